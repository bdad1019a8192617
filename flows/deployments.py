"""Schedule the audit with Prefect: a cron deployment of :func:`flows.audit.audit_flow`, served.

A nightly audit needs two long-running processes and no Docker, work pool or cloud account::

    prefect server start --host 127.0.0.1 --port 4200          # UI, scheduler, run history
    PREFECT_API_URL=http://127.0.0.1:4200/api \\
        python -m flows.deployments --cron "0 2 * * *" --timezone Europe/Berlin \\
            --out /data/audits/nightly crawl/ --teacher refs/teacher --human refs/human

``serve`` registers the deployment with its schedule and runs each scheduled run in a
subprocess (the scheduler lives in the server: the temporary server and the test harness do
not schedule). ``--register-only`` just registers it (e.g. for a process work pool's worker).
Without inputs, the deployment audits the sample data (``python -m flows.deployments --cron
"0 2 * * *" --timezone Europe/Berlin`` is a complete demo of a nightly schedule).

Users who outgrow one machine pass ``--dask`` (with the ``dask`` extra installed:
``pip install 'distill-audit[dask]'``): the audit's tasks (index build and training side by
side, detect of the corpus and of the baseline side by side) then run on a Dask cluster,
a local one by default or ``--dask-address tcp://scheduler:8786``. The choice travels in
environment variables (``DISTILL_AUDIT_TASK_RUNNER=dask``, ``DISTILL_AUDIT_DASK_ADDRESS``), which
also work for ``distill-audit audit``. The ingest subflow keeps its own task runner.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flows.runtime import (
    DASK_ADDRESS_ENV,
    DASK_WORKERS_ENV,
    TASK_RUNNER_ENV,
    DaskUnavailableError,
    apply_quiet_defaults,
    dask_task_runner,
)

apply_quiet_defaults()

from prefect.schedules import Cron  # noqa: E402

from flows.audit import audit_flow  # noqa: E402

DEFAULT_NAME = "nightly"
DEFAULT_CRON = "0 2 * * *"
SAMPLE_DIR = Path(__file__).resolve().parents[1] / "sample_data"
DEFAULT_DEMO_OUT = "build/scheduled-audit"


def audit_deployment(
    name: str = DEFAULT_NAME,
    cron: str = DEFAULT_CRON,
    timezone: str | None = None,
    parameters: dict[str, Any] | None = None,
    description: str | None = None,
) -> Any:
    """``audit_flow.to_deployment(...)`` with a cron schedule (``timezone`` None means UTC).

    ``parameters`` are :func:`flows.audit.audit_flow`'s (``inputs``, ``out``, ``teacher``, ...).
    """
    return audit_flow.to_deployment(
        name=name,
        schedule=Cron(cron, timezone=timezone),
        parameters=dict(parameters or {}),
        description=description or f"distill-audit on a schedule ({cron} {timezone or 'UTC'})",
    )


def use_dask(address: str | None = None, n_workers: int = 2) -> None:
    """Make every audit run started from this process use Dask.

    Served runs execute in subprocesses that import :mod:`flows.audit` afresh, so the choice
    travels in environment variables (read by :func:`flows.runtime.task_runner_from_env`).
    """
    dask_task_runner(address, n_workers=n_workers)  # fails early when prefect-dask is missing
    os.environ[TASK_RUNNER_ENV] = "dask"
    os.environ[DASK_WORKERS_ENV] = str(n_workers)
    if address:
        os.environ[DASK_ADDRESS_ENV] = address


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m flows.deployments",
        description="Register the audit flow with a cron schedule and serve it (needs a Prefect server).",
    )
    parser.add_argument(
        "inputs",
        nargs="*",
        help="crawl files or folders to audit on every run (default: the sample data demo)",
    )
    parser.add_argument(
        "--out", help="output directory of each run, replaced atomically (required with inputs)"
    )
    parser.add_argument("--teacher", action="append", help="teacher reference outputs (repeatable)")
    parser.add_argument("--human", action="append", help="human samples for training (repeatable)")
    parser.add_argument("--other-llm", action="append", help="other LLMs' outputs (repeatable)")
    parser.add_argument("--model", help="trained model directory to use")
    parser.add_argument("--index", help="MinHash index directory to use")
    parser.add_argument("--baseline", action="append", help="pre-LLM baseline crawl (repeatable)")
    parser.add_argument("--name", default=DEFAULT_NAME, help=f"deployment name (default {DEFAULT_NAME})")
    parser.add_argument("--cron", default=DEFAULT_CRON, help=f"cron schedule (default '{DEFAULT_CRON}')")
    parser.add_argument("--timezone", default=None, help="IANA time zone of the cron (default UTC)")
    parser.add_argument("--dask", action="store_true", help="run the tasks on Dask (needs the dask extra)")
    parser.add_argument("--dask-address", default=None, help="existing Dask scheduler address")
    parser.add_argument("--dask-workers", type=int, default=2, help="local Dask cluster workers (default 2)")
    parser.add_argument("--register-only", action="store_true", help="register the deployment and exit")
    return parser


def demo_parameters(out: str | None = None) -> dict[str, Any]:
    """The ``distill-audit demo`` audit of ``sample_data/`` as flow parameters (absolute paths)."""
    data = SAMPLE_DIR.resolve()
    return {
        "inputs": [str(data / "crawl")],
        "out": str(Path(out or DEFAULT_DEMO_OUT).resolve()),
        "teacher": [str(data / "teacher")],
        "human": [str(data / "human")],
        "baseline": [str(data / "baseline")],
    }


def parameters_from_args(args: argparse.Namespace) -> dict[str, Any]:
    if not args.inputs:
        return demo_parameters(args.out)
    if not args.out:
        raise SystemExit("error: --out is required when inputs are given")  # printed to stderr, exit 1
    params: dict[str, Any] = {"inputs": list(args.inputs), "out": args.out}
    for key in ("teacher", "human", "other_llm", "baseline", "model", "index"):
        value = getattr(args, key)
        if value:
            params[key] = value
    return params


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.dask or args.dask_address:
        try:
            use_dask(args.dask_address, args.dask_workers)
        except DaskUnavailableError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    deployment = audit_deployment(
        name=args.name, cron=args.cron, timezone=args.timezone, parameters=parameters_from_args(args)
    )
    if args.register_only:
        deployment_id = deployment.apply()
        print(f"registered deployment distill-audit/{args.name} ({deployment_id}) with cron {args.cron!r}")
        return 0
    from prefect import serve

    serve(deployment)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
