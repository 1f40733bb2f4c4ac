"""Meta Conversions API destination (tag to be added here; PII normalization lives in normalize.py)."""
