"""Per-client limits: a request rate, running places with a queue behind them, and a daily
spend budget."""
