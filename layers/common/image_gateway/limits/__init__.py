"""Per-client limits: a request rate, open tasks, and a daily spend budget."""
