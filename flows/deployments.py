"""Schedule the audit with Prefect: a cron deployment of :func:`flows.audit.audit_flow`, served.

A nightly audit needs two long-running processes and no Docker, work pool or cloud account::

    prefect server start --host 127.0.0.1 --port 4200          # UI, scheduler, run history
    PREFECT_API_URL=http://127.0.0.1:4200/api \\
        python -m flows.deployments --cron "0 2 * * *" --timezone Europe/Berlin \\
            --out /data/audits/nightly crawl/ --teacher refs/teacher --human refs/human

``serve`` registers the deployment with its schedule and runs each scheduled run in a
subprocess (the scheduler lives in the server: the temporary server and the test harness do
not schedule). ``--register-only --work-pool NAME`` just registers it in that process work pool,
for the pool's worker. Both refuse without ``PREFECT_API_URL``; paths are stored absolute.
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

from flows.audit import absolute_parameters, audit_flow, path_values  # noqa: E402

DEFAULT_NAME = "nightly"
DEFAULT_CRON = "0 2 * * *"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = PROJECT_ROOT / "sample_data"
#: Where the demo deployment writes when no --out is given: in the repository, wherever the
#: deployment was registered from and wherever its runs execute.
DEFAULT_DEMO_OUT = PROJECT_ROOT / "build" / "scheduled-audit"
#: Module path of the flow, for a work pool's worker: it imports the installed package, so it
#: does not depend on the worker's working directory (a file path entrypoint would).
FLOW_MODULE_PATH = "flows.audit.audit_flow"


class DeploymentError(Exception):
    """A deployment cannot be registered or served as asked; the message is one line."""


def check_schedule(cron: str, timezone: str | None) -> None:
    """Raise :class:`DeploymentError` unless ``cron`` and ``timezone`` make a valid schedule."""
    from prefect.client.schemas.schedules import CronSchedule

    try:
        CronSchedule(cron=cron, timezone=timezone)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        reasons = getattr(exc, "errors", None)
        if callable(reasons):
            text = "; ".join(str(e.get("msg", "")).removeprefix("Value error, ") for e in reasons())
        else:
            text = str(exc)
        given = f"--cron {cron!r}" + (f" --timezone {timezone!r}" if timezone else "")
        raise DeploymentError(f"invalid schedule {given}: {text}") from None


def check_server() -> str:
    """The configured Prefect API URL, checked to answer; :class:`DeploymentError` otherwise.

    Without ``PREFECT_API_URL`` Prefect would register into a temporary server that exits with
    this process and never schedules anything, so nothing would ever run.
    """
    from prefect.client.orchestration import get_client
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if not url:
        raise DeploymentError(
            "no Prefect server configured (PREFECT_API_URL is not set), so the deployment would go "
            "to a temporary server that exits with this command and nothing would ever run: start "
            "one with `prefect server start --host 127.0.0.1 --port 4200` and set "
            "PREFECT_API_URL=http://127.0.0.1:4200/api"
        )
    with get_client(sync_client=True) as client:
        problem = client.api_healthcheck()
    if problem is not None:
        raise DeploymentError(f"the Prefect server at {url} does not answer: {problem}")
    return str(url)


def check_work_pool(name: str) -> None:
    """Raise :class:`DeploymentError` unless the work pool ``name`` exists on the server."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
        except ObjectNotFound:
            raise DeploymentError(
                f"work pool {name!r} not found on the Prefect server: create it with "
                f"`prefect work-pool create {name} --type process`"
            ) from None


def check_deployment_mode(name: str, work_pool: str | None) -> None:
    """Raise :class:`DeploymentError` when ``distill-audit/<name>`` exists on the server in the
    other mode: served (no work pool) when registering for a pool, or in a work pool when serving.

    The new registration would take the existing deployment over: its parameters, schedule and
    entrypoint replaced, and a served one paused (its scheduled runs deleted) when ``serve``
    stops, so a pool's nightly runs would silently stop.
    """
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            existing = client.read_deployment_by_name(f"{audit_flow.name}/{name}")
        except ObjectNotFound:
            return
    if existing.work_pool_name and not work_pool:
        raise DeploymentError(
            f"deployment {audit_flow.name}/{name} is registered in work pool {existing.work_pool_name!r}; "
            "serving it under the same name would take it over and pause it when serving stops: "
            "choose another --name"
        )
    if work_pool and not existing.work_pool_name:
        raise DeploymentError(
            f"deployment {audit_flow.name}/{name} is a served deployment (no work pool); registering it in "
            f"work pool {work_pool!r} would take it over: choose another --name, or delete it first "
            f"(`prefect deployment delete {audit_flow.name}/{name}`)"
        )


def audit_deployment(
    name: str = DEFAULT_NAME,
    cron: str = DEFAULT_CRON,
    timezone: str | None = None,
    parameters: dict[str, Any] | None = None,
    description: str | None = None,
    work_pool: str | None = None,
    job_variables: dict[str, Any] | None = None,
) -> Any:
    """``audit_flow.to_deployment(...)`` with a cron schedule (``timezone`` None means UTC).

    ``parameters`` are :func:`flows.audit.audit_flow`'s (``inputs``, ``out``, ``teacher``, ...);
    relative paths among them are made absolute against the current directory. With
    ``work_pool``, the deployment is meant for that pool's worker (``.apply()`` registers it
    there) and names the flow by module path (:data:`FLOW_MODULE_PATH`), so the worker finds it
    from any working directory; ``job_variables`` go to the worker (e.g. ``{"env": {...}}``).
    A run triggered with a relative path (``prefect deployment run ... --param out=x``, the UI's
    run form) fails with a clear message (:func:`flows.audit.check_deployment_paths`): the
    worker's working directory is temporary.
    """
    from prefect.deployments.runner import EntrypointType

    options: dict[str, Any] = {}
    if work_pool:
        options = {"work_pool_name": work_pool, "entrypoint_type": EntrypointType.MODULE_PATH,
                   "job_variables": dict(job_variables or {})}
    return audit_flow.to_deployment(
        name=name,
        schedule=Cron(cron, timezone=timezone),
        parameters=absolute_parameters(dict(parameters or {})),
        description=description or f"distill-audit on a schedule ({cron} {timezone or 'UTC'})",
        **options,
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
    parser.add_argument(
        "--register-only",
        action="store_true",
        help="register the deployment for --work-pool's worker and exit (instead of serving it)",
    )
    parser.add_argument(
        "--work-pool",
        default=None,
        metavar="NAME",
        help="process work pool whose worker runs the deployment (required with --register-only)",
    )
    return parser


def demo_parameters(out: str | None = None) -> dict[str, Any]:
    """The ``distill-audit demo`` audit of ``sample_data/`` as flow parameters (absolute paths)."""
    data = SAMPLE_DIR.resolve()
    return {
        "inputs": [str(data / "crawl")],
        "out": os.path.abspath(out or DEFAULT_DEMO_OUT),
        "teacher": [str(data / "teacher")],
        "human": [str(data / "human")],
        "baseline": [str(data / "baseline")],
    }


#: Options that name audit inputs besides the crawl: without crawl inputs (the demo) they
#: would be ignored, so they are refused there.
INPUT_OPTIONS = ("teacher", "human", "other_llm", "baseline", "model", "index")


def parameters_from_args(args: argparse.Namespace) -> dict[str, Any]:
    if not args.inputs:
        given = [f"--{key.replace('_', '-')}" for key in INPUT_OPTIONS if getattr(args, key)]
        if given:
            raise DeploymentError(
                f"{', '.join(given)} given without crawl inputs: without inputs the deployment audits "
                "the sample data and would ignore them; name the crawl files or folders to audit"
            )
        return demo_parameters(args.out)
    if not args.out:
        raise DeploymentError("--out is required when inputs are given")
    params: dict[str, Any] = {"inputs": list(args.inputs), "out": args.out}
    for key in INPUT_OPTIONS:
        value = getattr(args, key)
        if value:
            params[key] = value
    # The runs execute in other processes (a served run's subprocess, a worker) whose working
    # directory is not this one.
    return absolute_parameters(params)


def missing_paths(parameters: dict[str, Any]) -> list[str]:
    """The input paths among ``parameters`` (not ``out``) that do not exist now."""
    inputs = path_values(parameters, ("inputs", *INPUT_OPTIONS))
    return [path for _, path in inputs if not os.path.exists(path)]


def _dask_env() -> dict[str, str]:
    keys = (TASK_RUNNER_ENV, DASK_WORKERS_ENV, DASK_ADDRESS_ENV)
    return {key: os.environ[key] for key in keys if os.environ.get(key)}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _main(args)
    except (DeploymentError, DaskUnavailableError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _main(args: argparse.Namespace) -> int:
    # Everything that can be checked is checked before registering anything.
    check_schedule(args.cron, args.timezone)
    if args.register_only and not args.work_pool:
        raise DeploymentError(
            "--register-only needs --work-pool NAME: a deployment without a work pool only runs "
            "while `python -m flows.deployments` serves it (create a pool with `prefect work-pool "
            "create NAME --type process` and run `prefect worker start --pool NAME`)"
        )
    if args.work_pool and not args.register_only:
        raise DeploymentError("--work-pool goes with --register-only (serving runs the flow itself)")
    parameters = parameters_from_args(args)
    if args.dask or args.dask_address:
        use_dask(args.dask_address, args.dask_workers)
    check_server()
    if args.work_pool:
        check_work_pool(args.work_pool)
    check_deployment_mode(args.name, args.work_pool)
    for path in missing_paths(parameters):
        # not refused: a crawl folder may be mounted or written before the first scheduled run
        print(f"warning: {path} does not exist now; runs fail unless it exists when they start",
              file=sys.stderr)
    # A worker's runs do not inherit this process's environment: the Dask choice travels
    # with the deployment (a served run's subprocess inherits it).
    job_variables = {"env": _dask_env()} if args.work_pool and _dask_env() else None
    deployment = audit_deployment(
        name=args.name, cron=args.cron, timezone=args.timezone, parameters=parameters,
        work_pool=args.work_pool, job_variables=job_variables,
    )
    if args.register_only:
        deployment_id = deployment.apply()
        print(
            f"registered deployment distill-audit/{args.name} ({deployment_id}) in work pool "
            f"{args.work_pool!r} with cron {args.cron!r} {args.timezone or 'UTC'}; start its worker "
            f"with `prefect worker start --pool {args.work_pool}`"
        )
        return 0
    from prefect import serve

    serve(deployment)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
