"""Numerics: BSM prices, greeks and implied vols, American prices, SVI smiles, chain analytics."""
