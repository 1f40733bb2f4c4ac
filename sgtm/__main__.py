"""`python -m sgtm` runs the CLI, for environments without the `sgtm` script on PATH."""

from sgtm.cli import main

raise SystemExit(main())
