"""Market data feeds: the seeded simulated market, boundary validation; alpaca and replay later."""
