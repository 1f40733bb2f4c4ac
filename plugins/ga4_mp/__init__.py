"""The `ga4_mp` built-in plugin (registers its types once implemented)."""
