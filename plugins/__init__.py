"""Built-in sgtm plugins; each subpackage registers through the `sgtm` entry-point group."""
