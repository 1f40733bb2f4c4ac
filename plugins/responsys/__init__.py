"""The `responsys` built-in plugin (registers its types once implemented)."""
