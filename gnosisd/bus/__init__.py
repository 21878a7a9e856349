"""Event types, topics and the in-process async bus."""
