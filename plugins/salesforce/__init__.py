"""The `salesforce` built-in plugin (registers its types once implemented)."""
