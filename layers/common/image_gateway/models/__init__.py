"""Pydantic models crossing the gateway's layers: request, task, events."""
