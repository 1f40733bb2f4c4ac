"""`sgtm serve --workers N`: uvicorn's worker supervisor, with sgtm's SIGHUP.

uvicorn answers SIGHUP by replacing each worker with a new process. sgtm passes the signal on
instead, and each worker reloads its containers in place (sgtm/reload.py): an invalid version
keeps every worker serving the old one, and lanes, leases and connections stay.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal

from uvicorn.supervisors import Multiprocess

log = logging.getLogger("sgtm.reload")


class ReloadingWorkers(Multiprocess):
    def handle_hup(self) -> None:
        log.info("SIGHUP: each worker reloads", extra={"workers": len(self.processes)})
        for process in self.processes:
            if process.pid is not None and process.exitcode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGHUP)
