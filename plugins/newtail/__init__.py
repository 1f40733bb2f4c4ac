"""The `newtail` built-in plugin (registers its types once implemented)."""
