"""The Alpaca broker: endpoints and keys, order translation, execution policy, order state machine.

Only this package and gnosisd.feeds.alpaca import alpaca-py (an import-linter contract).
"""
