"""Quiet, offline Prefect settings for running flows from the command line.

Without ``PREFECT_API_URL``, Prefect starts a temporary local server (SQLite under
``PREFECT_HOME``) for the duration of the process; with it, flow runs are reported to that
server instead. Either way nothing here talks to the internet.

Measured costs this module works around (``../shared/notes/prefect.md``):

* every synchronous flow call joins a heartbeat thread that sleeps in 1 s steps, so a flow
  costs at least ~1.1 s; the heartbeat is switched off in code (the environment variable
  cannot express "off");
* the server's telemetry heartbeat phones home and, on SQLite, can print a "database is
  locked" traceback: ``PREFECT_SERVER_ANALYTICS_ENABLED=false`` stops it, ``DO_NOT_TRACK=1``
  stops the client's;
* a cold temporary server takes 7-13 s to start on 2 cores, more when several processes
  start at once, so the 20 s default start-up timeout is raised to 90 s;
* INFO logs ("Starting temporary server", one line per task) are noise for a CLI user.

The defaults only apply to variables the user has not set. Prefect reads most of them when it
is first imported, so :func:`apply_quiet_defaults` must run before ``import prefect``; the
CLI imports Prefect lazily for that reason.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

QUIET_DEFAULTS: dict[str, str] = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
}


def apply_quiet_defaults(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Set each of :data:`QUIET_DEFAULTS` that is not already set; return what was set.

    ``environ`` defaults to ``os.environ`` (which the temporary server subprocess inherits).
    """
    env = os.environ if environ is None else environ
    applied = {}
    for key, value in QUIET_DEFAULTS.items():
        if key not in env:
            env[key] = value
            applied[key] = value
    return applied


def prefect_already_imported() -> bool:
    return "prefect" in sys.modules


@contextlib.contextmanager
def embedded_prefect() -> Iterator[None]:
    """Run the enclosed flow calls with quiet defaults and no heartbeat join.

    Use it around every flow call the CLI makes. Nested use is harmless.
    """
    apply_quiet_defaults()
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def api_target() -> str:
    """Where flow runs are recorded: the ``PREFECT_API_URL`` server or the temporary one."""
    url = os.environ.get("PREFECT_API_URL")
    if url:
        return url
    home = os.environ.get("PREFECT_HOME", os.path.join(os.path.expanduser("~"), ".prefect"))
    return f"temporary local server (history in {home})"
