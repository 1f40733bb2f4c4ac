"""The `datalayer` built-in plugin (registers its types once implemented)."""
