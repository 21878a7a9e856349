"""Analytic engines: hedge (dealer exposures), liquidity, sentiment, volatility."""
