"""The `rdstation` built-in plugin (registers its types once implemented)."""
