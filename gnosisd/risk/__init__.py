"""Risk guard: the only door to the broker; limits, trading state, kill-switch sources."""
