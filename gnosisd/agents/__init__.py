"""Composer, trade agent (strategies, selection, risk profile, sizing), exit rules, position manager."""
