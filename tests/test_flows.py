"""The audit flow under Prefect's test harness: real steps on the sample data, artifacts read back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.runtime import QUIET_DEFAULTS, apply_quiet_defaults, embedded_prefect
from sample_data.generate import SAMPLE_DIR

pytestmark = pytest.mark.prefect


@pytest.fixture(scope="module")
def index_only_audit(prefect_harness, tmp_path_factory) -> dict:
    """One audit of the sample crawl with the MinHash index only (no classifier training)."""
    from flows.audit import audit_flow

    out = tmp_path_factory.mktemp("audit-index-only")
    state = audit_flow(
        inputs=[str(SAMPLE_DIR / "crawl")],
        out=str(out),
        teacher=[str(SAMPLE_DIR / "teacher")],
        baseline=[str(SAMPLE_DIR / "baseline")],
        report_config={"n_boot": 300, "unseen_models": {"teacher_min_detectability": 0.8}},
        return_state=True,
    )
    assert state.is_completed(), state
    return {"state": state, "result": state.result(), "out": out}


def _artifacts(flow_run_id) -> dict[str, object]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key: a for a in found}


def test_audit_flow_writes_every_step(index_only_audit) -> None:
    result, out = index_only_audit["result"], index_only_audit["out"]
    paths = result["paths"]
    assert paths["model"] is None  # no --human, no --model: nothing trained
    for key in ("corpus", "index", "scores", "baseline_corpus", "baseline_scores", "report"):
        assert Path(paths[key]).exists(), key
    manifest = json.loads((out / "corpus" / "manifest.json").read_text())
    counts = manifest["counts"]
    assert counts["written"] > 0
    assert counts["records_read"] == counts["written"] + counts["exact_duplicates"] + counts["rejected"]
    report = json.loads(Path(paths["report"]).read_text())
    assert report == json.loads(json.dumps(result["report"], default=str))
    assert report["corpus"]["documents"] == counts["written"]
    # the flow's report settings reach the report, which records them
    assert report["inputs"]["n_boot"] == 300
    assert report["inputs"]["unseen_models"]["teacher_min_detectability"] == 0.8
    # the sample crawl holds copies of teacher references; the index finds them
    assert report["teacher_share"]["flagged_share"] > 0


def test_audit_flow_publishes_summary_table_and_link(index_only_audit) -> None:
    state, result = index_only_audit["state"], index_only_audit["result"]
    artifacts = _artifacts(state.state_details.flow_run_id)
    assert {"audit-summary", "audit-sources", "audit-report"} <= set(artifacts)

    report = result["report"]
    summary = artifacts["audit-summary"].data
    assert "Teacher share" in summary and report["verdict"]["label"] in summary
    assert f"{report['corpus']['documents']} documents" in summary

    table = artifacts["audit-sources"].data
    rows = json.loads(table) if isinstance(table, str) else table
    assert sorted(r["source"] for r in rows) == sorted(s["source"] for s in report["sources"])
    assert {r["verdict"] for r in rows} == {s["verdict"]["label"] for s in report["sources"]}
    assert {r["reason"] for r in rows} == {s["verdict"]["reason"] for s in report["sources"]}
    assert all(r["llm_share"].endswith("%") for r in rows)
    assert report["verdict"]["reason"] in summary

    link = artifacts["audit-report"].data  # Prefect stores link artifacts as markdown "[text](url)"
    assert Path(result["paths"]["report"]).resolve().as_uri() in link


def test_audit_flow_refuses_without_any_detector(prefect_harness, tmp_path) -> None:
    from flows.audit import StepError, audit_flow

    with pytest.raises(StepError, match="nothing to detect with"):
        audit_flow(inputs=[str(SAMPLE_DIR / "crawl")], out=str(tmp_path / "audit"))
    assert not (tmp_path / "audit" / "corpus").exists()  # refused before ingesting anything
    from pipeline.report import ReportError

    with pytest.raises(ReportError, match="unknown report setting"):
        audit_flow(inputs=[str(SAMPLE_DIR / "crawl")], out=str(tmp_path / "audit"),
                   teacher=[str(SAMPLE_DIR / "teacher")], report_config={"boot": 5})
    assert not (tmp_path / "audit" / "corpus").exists()


def test_failing_run_prints_no_traceback_under_embedded_prefect(prefect_harness, tmp_path, capfd) -> None:
    from flows.audit import audit_flow
    from pipeline.readers import InputError

    with embedded_prefect(show_run_errors=False), pytest.raises(InputError):
        audit_flow(inputs=[str(tmp_path / "missing.jsonl")], out=str(tmp_path / "a"), teacher=["x"])
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err + captured.out


def test_quiet_defaults_never_override_the_user() -> None:
    env = {"PREFECT_LOGGING_LEVEL": "DEBUG"}
    applied = apply_quiet_defaults(env)
    assert env["PREFECT_LOGGING_LEVEL"] == "DEBUG" and "PREFECT_LOGGING_LEVEL" not in applied
    assert env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false" and env["DO_NOT_TRACK"] == "1"
    assert set(applied) == set(QUIET_DEFAULTS) - {"PREFECT_LOGGING_LEVEL"}
