"""Persistence: the append-only JSONL journal and state snapshots for restarts."""
