"""Composition root: daemon wiring, supervision, signals, logging set-up, systemd notify."""
