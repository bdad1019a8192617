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
* INFO logs ("Starting temporary server", one line per task) are noise for a CLI user, and so
  are the temporary server's shutdown-race tracebacks ("Error flushing events").

The defaults only apply to variables the user has not set. Prefect reads most of them when it
is first imported, so :func:`apply_quiet_defaults` must run before ``import prefect``; the
CLI imports Prefect lazily for that reason.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator

QUIET_DEFAULTS: dict[str, str] = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    # Only servers started from this process read it, i.e. the temporary one. When it is
    # stopped at exit, its task-run recorder often logs "Error flushing events" tracebacks
    # (a shutdown race: the run itself is complete). A server you start yourself is unaffected.
    "PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL",
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


class _HideRunErrors(logging.Filter):
    """Drop flow/task-run ERROR records (with their tracebacks) from the console.

    They still reach the Prefect API (its handler sits on the run loggers and sees each
    record before it propagates to the root console handler), so the run history keeps the
    full traceback while the CLI prints one ``error:`` line of its own.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        run_logger = record.name.startswith(("prefect.flow_runs", "prefect.task_runs"))
        return not (run_logger and record.levelno >= logging.ERROR)


def _console_handlers() -> list[logging.Handler]:
    from prefect.logging.handlers import PrefectConsoleHandler

    return [h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler)]


@contextlib.contextmanager
def embedded_prefect(show_run_errors: bool | None = None) -> Iterator[None]:
    """Run the enclosed flow calls with quiet defaults and no heartbeat join.

    Use it around every flow call the CLI makes. ``show_run_errors`` (default: the
    ``DISTILL_AUDIT_DEBUG`` environment variable) keeps Prefect's own failure logs and
    tracebacks on the console; otherwise the caller reports failures in one line.
    """
    apply_quiet_defaults()
    # Importing prefect's main module configures logging (dictConfig replaces handlers); do it
    # now, so the filters below sit on the handlers that will really be used.
    import prefect.main  # noqa: F401
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    if show_run_errors is None:
        show_run_errors = bool(os.environ.get("DISTILL_AUDIT_DEBUG"))
    hide = _HideRunErrors()
    handlers = [] if show_run_errors else _console_handlers()
    for handler in handlers:
        handler.addFilter(hide)
    try:
        with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            yield
    finally:
        for handler in handlers:
            handler.removeFilter(hide)


def api_target() -> str:
    """Where flow runs are recorded: the configured API server, or the temporary local one."""
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    if settings.api.url:
        return str(settings.api.url)
    return f"temporary local Prefect server (history in {settings.home})"


# --------------------------------------------------------------------------------------------
# Task runner choice (read when flows.audit is imported, so it reaches every run subprocess)
# --------------------------------------------------------------------------------------------

TASK_RUNNER_ENV = "DISTILL_AUDIT_TASK_RUNNER"  # "dask" to use prefect-dask's DaskTaskRunner
DASK_ADDRESS_ENV = "DISTILL_AUDIT_DASK_ADDRESS"  # an existing scheduler, e.g. tcp://10.0.0.5:8786
DASK_WORKERS_ENV = "DISTILL_AUDIT_DASK_WORKERS"  # workers of the local cluster (default 2)


class DaskUnavailableError(RuntimeError):
    """The Dask task runner was asked for but prefect-dask is not installed."""


def dask_task_runner(address: str | None = None, n_workers: int = 2, threads_per_worker: int = 1) -> object:
    """A ``prefect_dask.DaskTaskRunner``: on ``address`` if given, else a new local cluster per run.

    Dask's INFO logs (and its shutdown warnings) would swamp the console, so the distributed
    logger is set to error unless the user configured it; dask reads this when it is first
    imported, hence before importing prefect_dask.
    """
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "error")
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as exc:
        raise DaskUnavailableError(
            "the Dask task runner needs prefect-dask: pip install 'distill-audit[dask]'"
        ) from exc
    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": n_workers,
            "threads_per_worker": threads_per_worker,
            "processes": True,
            "dashboard_address": None,
        }
    )


def task_runner_from_env() -> object | None:
    """The task runner the environment asks for, or None for Prefect's default (threads)."""
    address = os.environ.get(DASK_ADDRESS_ENV) or None
    if os.environ.get(TASK_RUNNER_ENV, "").lower() != "dask" and address is None:
        return None
    return dask_task_runner(address, n_workers=int(os.environ.get(DASK_WORKERS_ENV, "2")))
