"""The `beacon` built-in plugin (registers its types once implemented)."""
