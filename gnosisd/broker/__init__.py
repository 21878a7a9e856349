"""Brokers: the protocol, the simulated broker and its exact-money ledger."""
