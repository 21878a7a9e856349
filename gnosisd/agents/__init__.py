"""Composer, trade agent (strategies, selection, sizing), exit rules, position manager."""
