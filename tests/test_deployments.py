"""Scheduled deployments of the audit flow, registered against the test harness and read back."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows import runtime
from flows.deployments import audit_deployment, main

PROJECT_ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.prefect

PARAMS = {"inputs": ["/data/crawl"], "out": "/data/audits/nightly", "teacher": ["/data/refs/teacher"],
          "human": ["/data/refs/human"]}


def _read(name: str):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_deployment_by_name(f"distill-audit/{name}")


def test_deployment_object_carries_cron_timezone_and_parameters() -> None:
    deployment = audit_deployment(name="obj", cron="30 1 * * *", timezone="Europe/Berlin", parameters=PARAMS)
    schedule = deployment.schedules[0].schedule
    assert (schedule.cron, schedule.timezone) == ("30 1 * * *", "Europe/Berlin")
    assert deployment.parameters == PARAMS
    assert deployment.entrypoint.endswith("flows/audit.py:audit_flow")
    # relative paths are stored absolute: a run's working directory is not the registering one
    relative = audit_deployment(name="rel", parameters={"inputs": ["crawl"], "out": "o", "model": "m"})
    assert relative.parameters == {"inputs": [str(Path.cwd() / "crawl")], "out": str(Path.cwd() / "o"),
                                   "model": str(Path.cwd() / "m")}


def test_deployment_registered_with_its_schedule(prefect_harness) -> None:
    deployment_id = audit_deployment(name="nightly-ci", cron="0 2 * * *", parameters=PARAMS).apply()
    dep = _read("nightly-ci")
    assert dep.id == deployment_id
    assert [s.schedule.cron for s in dep.schedules] == ["0 2 * * *"]
    assert all(s.active for s in dep.schedules) and not dep.paused
    assert dep.parameters == PARAMS


@pytest.fixture(scope="module")
def work_pool(prefect_harness) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name="audit-ci-pool", type="process"))
    return "audit-ci-pool"


def _one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err + captured.out
    return lines[0]


def test_command_line_registers_a_timezoned_deployment(work_pool, capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # relative paths are stored absolute, against this directory
    rc = main(
        [
            "crawl/",
            "--out",
            "audits/weekly",
            "--teacher",
            "refs/t",
            "--baseline",
            "old/",
            "--name",
            "weekly-ci",
            "--cron",
            "0 6 * * 1",
            "--timezone",
            "America/New_York",
            "--register-only",
            "--work-pool",
            work_pool,
        ]
    )
    assert rc == 0
    assert "distill-audit/weekly-ci" in capsys.readouterr().out
    dep = _read("weekly-ci")
    schedule = dep.schedules[0].schedule
    assert (schedule.cron, schedule.timezone) == ("0 6 * * 1", "America/New_York")
    assert dep.parameters == {
        "inputs": [str(tmp_path / "crawl")],
        "out": str(tmp_path / "audits/weekly"),
        "teacher": [str(tmp_path / "refs/t")],
        "baseline": [str(tmp_path / "old")],
    }
    # the pool's worker picks it up, and imports the flow from the installed package
    assert dep.work_pool_name == work_pool
    assert dep.entrypoint == "flows.audit.audit_flow"


def test_register_only_needs_an_existing_work_pool(prefect_harness, capsys) -> None:
    assert main(["--register-only", "--name", "no-pool"]) == 1
    assert "--work-pool" in _one_error_line(capsys)
    assert main(["--register-only", "--work-pool", "no-such-pool", "--name", "no-pool"]) == 1
    assert "prefect work-pool create no-such-pool" in _one_error_line(capsys)
    assert main(["--work-pool", "x", "--name", "no-pool"]) == 1  # serving needs no pool
    assert "--register-only" in _one_error_line(capsys)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--cron", "61 * * * *"], 'Invalid cron string: "61 * * * *"'),
        (["--cron", "nightly"], "Invalid cron string"),
        (["--timezone", "Mars/Olympus"], 'Invalid timezone: "Mars/Olympus"'),
    ],
)
def test_bad_cron_or_timezone_is_one_error_line(args, fragment, capsys) -> None:
    assert main([*args, "--register-only", "--work-pool", "p"]) == 1
    assert fragment in _one_error_line(capsys)


def test_without_a_prefect_server_nothing_is_registered_or_served(capsys) -> None:
    """No PREFECT_API_URL: a temporary server would take the deployment and exit with it."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        for args in (["--register-only", "--work-pool", "p"], []):
            assert main(["--name", "nowhere", *args]) == 1
            line = _one_error_line(capsys)
            assert "PREFECT_API_URL" in line and "prefect server start" in line


def test_dask_choice_travels_in_the_environment(monkeypatch) -> None:
    monkeypatch.delenv(runtime.TASK_RUNNER_ENV, raising=False)
    monkeypatch.delenv(runtime.DASK_ADDRESS_ENV, raising=False)
    assert runtime.task_runner_from_env() is None  # Prefect's default thread runner
    monkeypatch.setenv(runtime.TASK_RUNNER_ENV, "dask")
    try:
        import prefect_dask
    except ImportError:
        with pytest.raises(runtime.DaskUnavailableError, match=r"distill-audit\[dask\]"):
            runtime.task_runner_from_env()
        return
    runner = runtime.task_runner_from_env()
    assert isinstance(runner, prefect_dask.DaskTaskRunner)
    monkeypatch.setenv(runtime.DASK_ADDRESS_ENV, "tcp://127.0.0.1:8786")
    assert runtime.task_runner_from_env().address == "tcp://127.0.0.1:8786"


def test_without_inputs_the_deployment_audits_the_sample_data(work_pool, tmp_path, monkeypatch) -> None:
    from flows.deployments import demo_parameters

    out = tmp_path / "scheduled"
    assert main(["--register-only", "--work-pool", work_pool, "--name", "demo-ci", "--out", str(out)]) == 0
    params = _read("demo-ci").parameters
    assert params == demo_parameters(str(out))
    for key in ("inputs", "teacher", "human", "baseline"):
        assert all(Path(p).is_dir() for p in params[key]), key
    # without --out, the demo writes in the repository, whatever directory it was registered from
    monkeypatch.chdir(tmp_path)
    assert main(["--register-only", "--work-pool", work_pool, "--name", "demo-default"]) == 0
    assert _read("demo-default").parameters["out"] == str(PROJECT_ROOT / "build" / "scheduled-audit")


def test_a_deployment_run_refuses_relative_paths(monkeypatch) -> None:
    """A relative path given when a run is triggered would be written into the worker's temporary
    working directory, deleted after the run: the run must fail instead."""
    from prefect import runtime

    from flows.audit import StepError, check_deployment_paths

    check_deployment_paths({"out": "relative/out"})  # outside a deployment run: made absolute later
    monkeypatch.setattr(runtime.deployment, "id", "3fa85f64-5717-4562-b3fc-2c963f66afa6", raising=False)
    check_deployment_paths({"out": "/abs/out", "inputs": ["/abs/crawl"], "model": None})
    with pytest.raises(StepError, match=r"out 'relative/out' is a relative path in a deployment run"):
        check_deployment_paths({"out": "relative/out"})
    with pytest.raises(StepError, match=r"inputs 'crawl' is a relative path"):
        check_deployment_paths({"out": "/abs/out", "inputs": ["/abs/a", "crawl"]})


def test_serving_does_not_take_over_a_work_pool_deployment(work_pool, capsys, monkeypatch) -> None:
    """Served under a pool deployment's name, it would be overwritten and paused on exit."""
    import prefect

    def no_serve(*_args, **_kwargs):
        raise AssertionError("serve must not start")

    monkeypatch.setattr(prefect, "serve", no_serve)
    assert main(["/data/crawl", "--out", "/data/o", "--name", "pooled-ci", "--register-only",
                 "--work-pool", work_pool]) == 0
    # registered anyway (a crawl folder may appear before the first run), with a warning
    assert "warning: /data/crawl does not exist now" in capsys.readouterr().err
    assert main(["/data/crawl", "--out", "/data/o", "--name", "pooled-ci"]) == 1
    line = _one_error_line(capsys)
    assert f"registered in work pool '{work_pool}'" in line and "choose another --name" in line
    assert _read("pooled-ci").work_pool_name == work_pool and not _read("pooled-ci").paused
    # the other way round: a served deployment is not moved into a pool behind its back
    audit_deployment(name="served-ci", parameters=PARAMS).apply()
    assert main(["/data/crawl", "--out", "/data/o", "--name", "served-ci", "--register-only",
                 "--work-pool", work_pool]) == 1
    assert "is a served deployment" in _one_error_line(capsys)
    assert _read("served-ci").work_pool_name is None


def test_reference_options_without_inputs_are_refused(capsys) -> None:
    """Without crawl inputs the demo runs: --teacher and friends would be silently ignored."""
    assert main(["--out", "/tmp/x", "--teacher", "/mine", "--baseline", "/old"]) == 1
    line = _one_error_line(capsys)
    assert "--teacher, --baseline given without crawl inputs" in line
