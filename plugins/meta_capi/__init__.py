"""The `meta_capi` built-in plugin (registers its types once implemented)."""
