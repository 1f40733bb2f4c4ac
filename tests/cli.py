"""Run the `sgtm` command in this process, as a shell would run it: arguments, stdin, an
environment, and what it printed. `main()` is the console script's own entry point; only the
interpreter start is saved (tests/test_cli.py keeps one run of the installed script)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from dataclasses import dataclass
from typing import Any
from unittest import mock

from sgtm.cli import main


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> Ran:
    """`sgtm ARGS` with `stdin`; `env` replaces the environment (None keeps this process's)."""
    out, err = io.StringIO(), io.StringIO()
    environ = mock.patch.dict(os.environ, env or {}, clear=env is not None)
    with (
        environ,
        mock.patch.object(sys, "stdin", io.StringIO(stdin)),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code if isinstance(exc.code, int) else 2
    return Ran(code, out.getvalue(), err.getvalue())


def dead_letters(config: str | os.PathLike[str], env: dict[str, str]) -> list[dict[str, Any]]:
    """`sgtm dlq list -c CONFIG --json` with `env` (and PATH only) as the environment: the dead
    letters of the store that config names, newest first (empty while there are none)."""
    done = run_cli("dlq", "list", "-c", str(config), "--json", env={"PATH": "", **env})
    if done.returncode != 0 or not done.stdout.startswith("["):
        return []
    letters: list[dict[str, Any]] = json.loads(done.stdout)
    return letters
