"""Batches: many ordinary tasks of one client under one id, with their own counters and one
results file (issue 21)."""
