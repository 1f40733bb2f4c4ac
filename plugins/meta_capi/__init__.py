"""Meta Conversions API destination (PII normalization and hashing: ``normalize.py``)."""
