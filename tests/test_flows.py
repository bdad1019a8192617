"""The audit flow under Prefect's test harness: real steps on the sample data, artifacts read back."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from flows.runtime import QUIET_DEFAULTS, apply_quiet_defaults, embedded_prefect
from pipeline.markdown import md_escape
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
    # text cells are escaped for Markdown (Prefect renders table cells as Markdown)
    assert sorted(r["source"] for r in rows) == sorted(md_escape(s["source"]) for s in report["sources"])
    assert {r["verdict"] for r in rows} == {s["verdict"]["label"] for s in report["sources"]}
    assert {r["reason"] for r in rows} == {md_escape(s["verdict"]["reason"]) for s in report["sources"]}
    assert all(r["llm_share"].endswith("%") for r in rows)
    assert md_escape(report["verdict"]["reason"]) in summary
    assert {len(row) for row in _table_rows(summary)} == {4}  # the evidence table keeps its columns

    link = artifacts["audit-report"].data  # Prefect stores link artifacts as markdown "[text](url)"
    assert Path(result["paths"]["report"]).resolve().as_uri() in link


HOSTILE = "<img src=x onerror=alert(1)> | col\n# not a heading [a link](http://x.example) `code`"


def _markdown() -> object:
    # markdown-it-py comes with rich; CommonMark passes raw HTML through, as an unsafe renderer would
    markdown_it = pytest.importorskip("markdown_it")
    return markdown_it.MarkdownIt("commonmark").enable("table")


def _tables(markdown: str) -> list[list[list[str]]]:
    """Every table's rows (header first) of cells, as a Markdown renderer parses them."""
    tables: list[list[list[str]]] = []
    for token in _markdown().parse(markdown):
        if token.type == "table_open":
            tables.append([])
        elif token.type == "tr_open":
            tables[-1].append([])
        elif token.type == "inline" and tables and tables[-1] and token.level >= 4:  # th/td content
            tables[-1][-1].append(token.content)
    return tables


def _table_rows(markdown: str) -> list[list[str]]:
    return [row for table in _tables(markdown) for row in table]


def test_crawl_strings_are_escaped_in_the_artifacts(index_only_audit) -> None:
    """A source name (or input path) from the crawl cannot inject HTML, links or table cells."""
    from flows.audit import source_rows, summary_markdown
    from flows.ingest import manifest_markdown

    result = json.loads(json.dumps(index_only_audit["result"], default=str))
    report, manifest = result["report"], result["manifest"]
    report["sources"][0]["source"] = HOSTILE
    report["sources"][0]["verdict"]["reason"] = f"source {HOSTILE!r}: dense templated teacher text"
    report["verdict"]["reason"] = report["sources"][0]["verdict"]["reason"]
    report["verdict"]["evidence"] = [*report["verdict"]["evidence"], {
        "signal": "flagged_share", "value": 0.5, "threshold": None, "points_to": HOSTILE}]
    manifest["inputs"][0]["path"] = "/crawl/<script>alert(1)</script> | x.jsonl"
    md = _markdown()

    for text in (summary_markdown(report, manifest, Path("/out/a|b/report.json")),
                 manifest_markdown(manifest, "/out/<b>corpus</b>")):
        rendered = md.render(text)
        assert "<img" not in rendered and "<script" not in rendered and "<b>" not in rendered
        assert "<a " not in rendered and "<code>" not in rendered and "<h1>not" not in rendered
        tables = _tables(text)
        assert tables and all(len({len(row) for row in table}) == 1 for table in tables), tables
    summary = summary_markdown(report, manifest, Path("/out/report.json"))
    assert "&lt;img src=x onerror=alert(1)&gt; | col # not a heading [a link](http://x.example) `code`" in (
        md.render(summary))  # the name still reads as itself, on one line
    assert {len(row) for row in _table_rows(summary)} == {4}

    rows = source_rows(report)
    assert {len(row) for row in rows} == {len(rows[0])}
    for row in rows:
        for cell in row.values():
            if isinstance(cell, str):
                rendered = md.renderInline(cell)
                assert "<img" not in rendered and "<a " not in rendered and "\n" not in cell
    hostile_row = next(r for r in rows if r["source"].startswith("&lt;img"))
    assert md.renderInline(hostile_row["source"]).startswith("&lt;img src=x onerror=alert(1)&gt; | col")


def test_rerun_without_baseline_removes_the_earlier_baseline(index_only_audit, tmp_path) -> None:
    """A re-run without --baseline must not leave the earlier run's baseline beside a report that
    did not use it; a user's files, and an earlier index this run does not read, stay."""
    from flows.audit import audit_flow

    out = tmp_path / "audit"
    shutil.copytree(index_only_audit["out"], out)  # an earlier run with --teacher and --baseline
    (out / "baseline" / "notes.txt").write_text("mine")
    (out / "model").mkdir()
    (out / "model" / "notes.txt").write_text("mine")  # not a distill-audit model: never removed
    settings = {"inputs": [str(SAMPLE_DIR / "crawl")], "out": str(out), "report_config": {"n_boot": 50}}

    # the index is given elsewhere: the earlier OUT/index stays (costly, maybe used by others)
    result = audit_flow(**settings, index=str(index_only_audit["out"] / "index"))
    assert result["removed"] == [str(out / "baseline" / "corpus"), str(out / "baseline" / "scores")]
    assert sorted(p.name for p in (out / "baseline").iterdir()) == ["notes.txt"]
    assert (out / "index" / "index.json").is_file() and (out / "model" / "notes.txt").read_text() == "mine"
    assert result["report"]["inputs"]["baseline_scores_dir"] is None

    # OUT/baseline as a symbolic link to another run's baseline: that one is not OUT's to remove
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(index_only_audit["out"] / "baseline", elsewhere)
    (out / "baseline" / "notes.txt").rename(tmp_path / "notes.txt")
    (out / "baseline").rmdir()
    (out / "baseline").symlink_to(elsewhere, target_is_directory=True)
    result = audit_flow(**settings, index=str(out / "index"))
    assert result["removed"] == [] and (elsewhere / "corpus" / "manifest.json").is_file()
    (out / "baseline").unlink()
    (out / "baseline").mkdir()
    (tmp_path / "notes.txt").rename(out / "baseline" / "notes.txt")

    # without the user's file the emptied baseline/ goes as well
    (out / "baseline" / "notes.txt").unlink()
    shutil.copytree(index_only_audit["out"] / "baseline", out / "baseline", dirs_exist_ok=True)
    result = audit_flow(**settings, index=str(out / "index"))
    assert not (out / "baseline").exists()
    assert sorted(p.name for p in out.iterdir()) == ["corpus", "index", "model", "report", "scores"]
    assert (index_only_audit["out"] / "baseline" / "scores").is_dir()  # the copied-from run is untouched


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
