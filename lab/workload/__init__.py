"""Clients that run on the scenario's client node and record a History (one JSONL file each)."""
