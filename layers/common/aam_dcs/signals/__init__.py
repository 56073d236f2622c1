"""Signals: the key and value rules, consent, and the send use case (sync and queued)."""
