"""Provider health: each provider's circuit breaker, kept in shared state (the tasks table)."""
