"""Numerics: Black-Scholes-Merton prices and greeks, payoff and risk-profile maths."""
