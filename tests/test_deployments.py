"""Scheduled deployments of the audit flow, registered against the test harness and read back."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows import runtime
from flows.deployments import audit_deployment, main

pytestmark = pytest.mark.prefect

PARAMS = {"inputs": ["crawl/"], "out": "audits/nightly", "teacher": ["refs/teacher"], "human": ["refs/human"]}


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


def test_deployment_registered_with_its_schedule(prefect_harness) -> None:
    deployment_id = audit_deployment(name="nightly-ci", cron="0 2 * * *", parameters=PARAMS).apply()
    dep = _read("nightly-ci")
    assert dep.id == deployment_id
    assert [s.schedule.cron for s in dep.schedules] == ["0 2 * * *"]
    assert all(s.active for s in dep.schedules) and not dep.paused
    assert dep.parameters == PARAMS


def test_command_line_registers_a_timezoned_deployment(prefect_harness, capsys) -> None:
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
        ]
    )
    assert rc == 0
    assert "distill-audit/weekly-ci" in capsys.readouterr().out
    dep = _read("weekly-ci")
    schedule = dep.schedules[0].schedule
    assert (schedule.cron, schedule.timezone) == ("0 6 * * 1", "America/New_York")
    assert dep.parameters == {
        "inputs": ["crawl/"],
        "out": "audits/weekly",
        "teacher": ["refs/t"],
        "baseline": ["old/"],
    }


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


def test_without_inputs_the_deployment_audits_the_sample_data(prefect_harness, tmp_path) -> None:
    from flows.deployments import demo_parameters

    out = tmp_path / "scheduled"
    assert main(["--register-only", "--name", "demo-ci", "--out", str(out)]) == 0
    params = _read("demo-ci").parameters
    assert params == demo_parameters(str(out))
    for key in ("inputs", "teacher", "human", "baseline"):
        assert all(Path(p).is_dir() for p in params[key]), key
