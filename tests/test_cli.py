"""The distill-audit command line: exit codes, one-line errors, and each command end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.compute as pc
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.detect import read_scores
from sample_data.generate import SAMPLE_DIR

runner = CliRunner()
CONSOLE_SCRIPT = Path(sys.executable).parent / "distill-audit"


def _run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def _assert_one_line_error(result, *fragments: str) -> str:
    assert result.exit_code == 1, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# ------------------------------------------------------------------ errors (no Prefect needed)


def test_missing_input_is_one_line_error(tmp_path) -> None:
    missing = tmp_path / "no-such-crawl.warc.gz"
    _assert_one_line_error(_run("ingest", missing, "--out", tmp_path / "corpus"), str(missing))
    assert not (tmp_path / "corpus").exists()


def test_unknown_format_is_one_line_error(tmp_path) -> None:
    _assert_one_line_error(
        _run("ingest", SAMPLE_DIR / "crawl", "--format", "pdf", "--out", tmp_path / "c"), "pdf"
    )


def test_detect_and_report_refuse_unusable_inputs(tmp_path) -> None:
    line = _assert_one_line_error(_run("detect", tmp_path, "--out", tmp_path / "s"), "nothing to detect with")
    assert "--model" in line and "--index" in line and "--teacher" not in line  # detect's own options
    _assert_one_line_error(_run("report", tmp_path / "no-scores", "--out", tmp_path / "r"))
    _assert_one_line_error(
        _run("audit", SAMPLE_DIR / "crawl", "--teacher", tmp_path / "nope", "--out", tmp_path / "a"), "nope"
    )
    _assert_one_line_error(_run("demo", "--data", tmp_path, "--out", tmp_path / "d"), "make sample-data")


def test_console_script_help_and_error_line(tmp_path) -> None:
    helped = subprocess.run([CONSOLE_SCRIPT, "--help"], capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0
    for command in ("ingest", "index", "train", "calibrate", "detect", "report", "audit", "demo"):
        assert command in helped.stdout
    failed = subprocess.run(
        [CONSOLE_SCRIPT, "ingest", tmp_path / "missing", "--out", tmp_path / "c"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode == 1
    assert failed.stderr.strip().splitlines() == [failed.stderr.strip()]
    assert failed.stderr.startswith("error: ") and "Traceback" not in failed.stderr
    usage = subprocess.run([CONSOLE_SCRIPT, "ingest"], capture_output=True, text=True, timeout=120)
    assert usage.returncode == 2  # click's usage error


# ------------------------------------------------------------------ single steps without Prefect


@pytest.fixture(scope="module")
def sample_corpus(tmp_path_factory) -> Path:
    from pipeline.ingest import ingest

    out = tmp_path_factory.mktemp("cli-corpus") / "corpus"
    ingest([SAMPLE_DIR / "crawl"], out)
    return out


def test_index_detect_report_commands(sample_corpus, tmp_path) -> None:
    index_dir, scores_dir, report_dir = tmp_path / "index", tmp_path / "scores", tmp_path / "report"
    indexed = _run("index", "--teacher", SAMPLE_DIR / "teacher", "--out", index_dir, "--num-perm", "64")
    assert indexed.exit_code == 0, indexed.output
    n_refs = sum(1 for _ in (SAMPLE_DIR / "teacher" / "teacher.jsonl").open())
    assert f"indexed {n_refs} teacher reference texts" in indexed.stdout
    assert json.loads((index_dir / "index.json").read_text())["params"]["num_perm"] == 64

    detected = _run("detect", sample_corpus, "--index", index_dir, "--out", scores_dir)
    assert detected.exit_code == 0, detected.output
    scores, _ = read_scores(scores_dir)
    matched = scores.filter(pc.is_valid(scores["matched_reference_id"]))
    hosts = {u.split("/")[2] for u in matched["url"].to_pylist()}
    # copies of the references sit on the Q/A dump and inside blog posts, never on the news site
    assert "qa-dump.example" in hosts and "millbrook-herald.example" not in hosts
    assert f"scored {scores.num_rows} documents" in detected.stdout

    reported = _run("report", scores_dir, "--out", report_dir)
    assert reported.exit_code == 0, reported.output
    report = json.loads((report_dir / "report.json").read_text())
    assert report["corpus"]["documents"] == scores.num_rows
    assert f"verdict: {report['verdict']['label']}" in reported.stdout

    # report settings from a JSON file, recorded in the report; bad files fail in one line
    config = tmp_path / "report-config.json"
    config.write_text(json.dumps({"n_boot": 200, "verdict": {"clean_max_ci_high": 0.03},
                                  "unseen_models": {"teacher_min_detectability": 0.8}}))
    configured = _run("report", scores_dir, "--out", tmp_path / "report2", "--config", config)
    assert configured.exit_code == 0, configured.output
    inputs = json.loads((tmp_path / "report2" / "report.json").read_text())["inputs"]
    assert inputs["n_boot"] == 200 and inputs["verdict_config"]["clean_max_ci_high"] == 0.03
    assert inputs["unseen_models"]["teacher_min_detectability"] == 0.8
    bad_configs = (
        ("{not json", "cannot read report config"), ("[1, 2]", "must hold a JSON object"),
        ('{"verdict": {"clean_max": 1}}', "unknown verdict setting"),
        ('{"n_boot": 5}', "n_boot must be an integer in [20, 1000000]"),
        ('{"estimation_fpr": "high"}', "estimation_fpr must be a number"),
        ('{"two_level": "no"}', "two_level must be true or false"),
        ('{"verdict": {"min_documents": "30"}}', "verdict.min_documents must be an integer"),
        ('{"verdict": {"clean_max_ci_high": null}}', "verdict.clean_max_ci_high must be a number"),
        ('{"unseen_models": []}', "unseen_models must be a mapping"),
    )
    for text, fragment in bad_configs:
        config.write_text(text)
        _assert_one_line_error(_run("report", scores_dir, "--out", tmp_path / "r3", "--config", config),
                               fragment)
        _assert_one_line_error(_run("audit", sample_corpus, "--index", index_dir, "--out", tmp_path / "a3",
                                    "--report-config", config), fragment)
    assert not (tmp_path / "r3").exists() and not (tmp_path / "a3").exists()
    missing = tmp_path / "nope.json"
    _assert_one_line_error(_run("report", scores_dir, "--out", tmp_path / "r3", "--config", missing),
                           "report config file not found")


@pytest.fixture
def sample_index(tmp_path, redis_url):
    """The sample references' index; its Redis keys (derived from its content) are removed after."""
    import redis

    from detectors.minhash import redis_storage_config

    index_dir = tmp_path / "index"
    assert _run("index", "--teacher", SAMPLE_DIR / "teacher", "--out", index_dir).exit_code == 0
    yield index_dir
    client = redis.Redis(**redis_storage_config(redis_url)["redis"])
    digest = json.loads((index_dir / "index.json").read_text())["content_sha256"]
    keys = list(client.scan_iter(match=f"distill-audit:minhash:{digest[:16]}*"))
    if keys:
        client.delete(*keys)


def test_detect_with_a_redis_index_scores_like_memory(
    sample_corpus, sample_index, redis_url, tmp_path
) -> None:
    index_dir = sample_index
    in_memory = _run("detect", sample_corpus, "--index", index_dir, "--out", tmp_path / "memory")
    assert in_memory.exit_code == 0, in_memory.output
    shared = _run("detect", sample_corpus, "--index", index_dir, "--out", tmp_path / "redis",
                  "--redis-url", redis_url)
    assert shared.exit_code == 0, shared.output
    (memory_scores, memory_info), (redis_scores, redis_info) = (
        read_scores(tmp_path / "memory"), read_scores(tmp_path / "redis"))
    columns = ["doc_id", "matched_reference_id", "minhash_containment", "flagged"]
    assert memory_scores.select(columns).to_pylist() == redis_scores.select(columns).to_pylist()
    assert memory_scores.filter(pc.is_valid(memory_scores["matched_reference_id"])).num_rows > 0
    # the same index description, so a baseline scored in memory is accepted for a Redis audit
    assert memory_info["index"] == redis_info["index"]
    assert (memory_info["index_storage"], redis_info["index_storage"]) == ("memory", "redis")

    _assert_one_line_error(
        _run("detect", sample_corpus, "--index", index_dir, "--out", tmp_path / "x", "--redis-url", "http://h"),
        "not a Redis URL")
    _assert_one_line_error(
        _run("detect", sample_corpus, "--index", index_dir, "--out", tmp_path / "x",
             "--redis-url", "redis://127.0.0.1:1/0"),
        "cannot use Redis at redis://127.0.0.1:1/0")


def test_index_options_reach_the_index(tmp_path) -> None:
    out = tmp_path / "index"
    args = ("index", "--teacher", SAMPLE_DIR / "teacher", "--out", out, "--shingle", "char", "--ngram", "7")
    result = _run(*args, "--threshold", "0.3")
    assert result.exit_code == 0, result.output
    params = json.loads((out / "index.json").read_text())["params"]
    assert (params["shingle"], params["ngram"], params["lsh_threshold"]) == ("char", 7, 0.3)
    _assert_one_line_error(_run(*args, "--threshold", "1.5"), "invalid MinHash parameters")
    _assert_one_line_error(
        _run("index", "--teacher", SAMPLE_DIR / "teacher", "--out", out, "--shingle", "syllable"), "syllable"
    )


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory) -> tuple[Path, object]:
    """The `train` command on the sample references (trained once: training is the slow step)."""
    out = tmp_path_factory.mktemp("cli-model") / "model"
    result = _run("train", "--teacher", SAMPLE_DIR / "teacher", "--human", SAMPLE_DIR / "human", "--out", out)
    return out, result


def test_train_command_writes_a_model(trained_model) -> None:
    out, result = trained_model
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert (out / "model.skops").is_file() and (out / "MODEL_CARD.md").is_file()
    assert f"ROC-AUC {metrics['roc_auc']:.3f}" in result.stdout


def test_calibrate_writes_the_placement_that_report_uses(trained_model, sample_corpus, tmp_path) -> None:
    import shutil

    model = tmp_path / "model"
    shutil.copytree(trained_model[0], model)  # the module's model stays uncalibrated
    scores = tmp_path / "scores"
    assert _run("detect", sample_corpus, "--model", model, "--out", scores).exit_code == 0
    uncalibrated = _run("report", scores, "--out", tmp_path / "r0")
    assert "No placement calibration" in uncalibrated.stdout

    # (the sample references trained this model: fine for the mechanics, optimistic as figures)
    result = _run("calibrate", model, "--teacher", SAMPLE_DIR / "teacher", "--human", SAMPLE_DIR / "human",
                  "--n-per-kind", "40")
    assert result.exit_code == 0, result.output
    placement = json.loads((model / "placement.json").read_text())
    assert {"whole", "embedded", "short"} <= set(placement["kinds"])
    assert all(kind["n"] == 40 for name, kind in placement["kinds"].items() if name != "prompt_response")
    assert "wrote" in result.stdout and "embedded" in result.stdout
    assert _run("detect", sample_corpus, "--model", model, "--out", scores).exit_code == 0
    calibrated = _run("report", scores, "--out", tmp_path / "r1")
    assert calibrated.exit_code == 0, calibrated.output
    assert "No placement calibration" not in calibrated.stdout
    _assert_one_line_error(
        _run("calibrate", tmp_path / "none", "--teacher", SAMPLE_DIR / "teacher",
             "--human", SAMPLE_DIR / "human"),
        "model directory does not exist")


def test_train_refuses_a_missing_or_tiny_class_in_one_line(tmp_path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    _assert_one_line_error(
        _run("train", "--teacher", SAMPLE_DIR / "teacher", "--human", empty, "--out", tmp_path / "m"), "human"
    )
    tiny = tmp_path / "tiny.jsonl"
    tiny.write_text("".join((SAMPLE_DIR / "human" / "human.jsonl").read_text().splitlines(True)[:3]))
    line = _assert_one_line_error(
        _run("train", "--teacher", SAMPLE_DIR / "teacher", "--human", tiny, "--out", tmp_path / "m"), "human"
    )
    assert "Error:" not in line  # the library's own message, not an exception dump
    assert not (tmp_path / "m").exists()
    # the same file as teacher and human: a mix-up, refused in one line (it used to train silently)
    same = SAMPLE_DIR / "teacher"
    _assert_one_line_error(
        _run("train", "--teacher", same, "--human", same, "--out", tmp_path / "m"),
        "the same texts are given under two classes", "'teacher' and 'human'",
    )
    assert not (tmp_path / "m").exists()


def test_detect_refuses_a_corrupt_index_in_one_line(sample_corpus, tmp_path) -> None:
    index_dir = tmp_path / "index"
    assert _run("index", "--teacher", SAMPLE_DIR / "teacher", "--out", index_dir).exit_code == 0
    (index_dir / "signatures.npy").write_bytes(b"not an array")
    line = _assert_one_line_error(
        _run("detect", sample_corpus, "--index", index_dir, "--out", tmp_path / "s")
    )
    assert "Error:" not in line


# ------------------------------------------------------------------ Prefect-backed commands


@pytest.mark.prefect
def test_ingest_command_summary_matches_manifest(prefect_harness, warc_fixtures, tmp_path) -> None:
    out = tmp_path / "corpus"
    result = _run("ingest", *warc_fixtures, SAMPLE_DIR / "crawl" / "shard-0001.jsonl", "--out", out)
    assert result.exit_code == 0, result.output
    counts = json.loads((out / "manifest.json").read_text())["counts"]
    assert counts["records_read"] == counts["written"] + counts["exact_duplicates"] + counts["rejected"]
    assert f"{counts['records_read']} records read, {counts['written']} written" in result.stdout
    assert f"ingested {len(warc_fixtures) + 1} input file(s)" in result.stdout


@pytest.mark.prefect
def test_ingest_of_unreadable_content_exits_non_zero(prefect_harness, tmp_path) -> None:
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_bytes(bytes(range(256)) * 20)
    _assert_one_line_error(_run("ingest", garbage, "--out", tmp_path / "c"), "no document written")


@pytest.mark.prefect
def test_demo_runs_the_full_audit(prefect_harness, trained_model, tmp_path) -> None:
    out = tmp_path / "demo"
    result = _run("demo", "--out", out, "--model", trained_model[0])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report" / "report.json").read_text())
    assert f"verdict: {report['verdict']['label']}" in result.stdout
    for part in ("corpus", "index", "scores", "baseline/corpus", "baseline/scores"):
        assert (out / part).is_dir(), part
    # the Q/A dump's copies of teacher references are flagged; the baseline crawl is scored too
    scores, _ = read_scores(out / "scores")
    flagged = scores.filter(scores["flagged"])
    flagged_hosts = {u.split("/")[2] for u in flagged["url"].to_pylist()}
    assert "qa-dump.example" in flagged_hosts
    assert read_scores(out / "baseline" / "scores")[0].num_rows > 0


@pytest.mark.prefect
def test_audit_rerun_without_baseline_removes_and_names_the_old_one(prefect_harness, tmp_path) -> None:
    from pipeline.steps import build_index, minhash_params

    index_dir = tmp_path / "index"
    build_index([SAMPLE_DIR / "teacher"], index_dir, minhash_params(num_perm=64))
    out = tmp_path / "audit"
    common = ("audit", SAMPLE_DIR / "crawl", "--index", index_dir, "--out", out)
    first = _run(*common, "--baseline", SAMPLE_DIR / "baseline")
    assert first.exit_code == 0, first.output
    assert (out / "baseline" / "scores").is_dir() and "removed" not in first.stdout
    again = _run(*common)
    assert again.exit_code == 0, again.output
    assert not (out / "baseline").exists()
    for step in ("corpus", "scores"):
        assert f"removed: {out / 'baseline' / step} (an earlier run's, not used by this report)" \
            in again.stdout


@pytest.mark.prefect
def test_ingest_progress_bar_counts_completed_tasks(prefect_harness, monkeypatch, tmp_path) -> None:
    import pipeline.cli as cli

    monkeypatch.setattr(cli, "_is_tty", lambda: True)
    inputs = [SAMPLE_DIR / "crawl" / "shard-0001.jsonl", SAMPLE_DIR / "human" / "human.jsonl"]
    result = _run("ingest", *inputs, "--out", tmp_path / "corpus")
    assert result.exit_code == 0, result.output
    # one ingest-file task per input plus the merge task
    assert f"{len(inputs) + 1}/{len(inputs) + 1}" in result.stdout


# ------------------------------------------------------------------ audit parameters (no Prefect run)


def test_audit_parameters_are_absolute(tmp_path, monkeypatch) -> None:
    """Tasks may run on Dask workers with another working directory: every path goes absolute."""
    from pipeline.cli import audit_parameters

    (tmp_path / "data").mkdir()
    for name in ("crawl", "teacher", "human", "other", "old"):
        (tmp_path / "data" / f"{name}.jsonl").write_text('{"text": "a text"}\n')
    for name in ("model", "index"):
        (tmp_path / name).mkdir()
    monkeypatch.chdir(tmp_path)
    params = audit_parameters(
        inputs=["data/crawl.jsonl"], out="out/x", teacher=["data/teacher.jsonl"], human=["data/human.jsonl"],
        other_llm=["data/other.jsonl"], model="model", index="./index", baseline=["data/old.jsonl"], seed=3,
    )
    assert params == {
        "inputs": [str(tmp_path / "data/crawl.jsonl")], "out": str(tmp_path / "out/x"),
        "teacher": [str(tmp_path / "data/teacher.jsonl")], "human": [str(tmp_path / "data/human.jsonl")],
        "other_llm": [str(tmp_path / "data/other.jsonl")], "model": str(tmp_path / "model"),
        "index": str(tmp_path / "index"), "baseline": [str(tmp_path / "data/old.jsonl")], "seed": 3,
    }
    # a symbolic link stays a link (not resolved), so --out's checks still refuse it
    (tmp_path / "link").symlink_to(tmp_path / "model")
    assert audit_parameters(inputs=["data/crawl.jsonl"], out="link", index="index")["out"] == str(
        tmp_path / "link"
    )


def test_audit_redis_url_is_checked_up_front_and_masked(tmp_path, monkeypatch) -> None:
    """Redis down fails before any work (no Prefect start, no ingest), password masked."""
    from pydantic import SecretStr

    from pipeline.cli import audit_parameters

    monkeypatch.chdir(tmp_path)
    (tmp_path / "index").mkdir()
    closed = "redis://user:hunter2@127.0.0.1:1/0"  # port 1: nothing listens
    line = _assert_one_line_error(
        _run("audit", SAMPLE_DIR / "crawl", "--index", "index", "--out", "a", "--redis-url", closed),
        "cannot use Redis at redis://user:***@127.0.0.1:1/0",
    )
    assert "hunter2" not in line
    assert not (tmp_path / "a").exists()  # nothing ingested
    # without an index the URL has nothing to do and is not checked
    params = audit_parameters(inputs=[str(SAMPLE_DIR / "crawl")], out="a", model="index", redis_url=closed)
    assert isinstance(params["redis_url"], SecretStr) and "hunter2" not in str(params["redis_url"])


@pytest.mark.prefect
def test_audit_redis_url_reaches_the_detect_task_and_is_stored_masked(
    prefect_harness, redis_password_url, tmp_path
) -> None:
    """`audit --redis-url` with a password in the URL: the flow's detect task scores with that
    Redis (a server that answers only with the password, so the whole URL got there), and neither
    the flow run Prefect stores (masked parameter) nor any output file holds the password."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    from tests.conftest import REDIS_TEST_PASSWORD

    out = tmp_path / "a"
    result = _run("audit", SAMPLE_DIR / "crawl", "--teacher", SAMPLE_DIR / "teacher", "--out", out,
                  "--redis-url", redis_password_url)
    assert result.exit_code == 0, result.output
    assert REDIS_TEST_PASSWORD not in result.output
    _, detectors = read_scores(out / "scores")
    assert detectors["index_storage"] == "redis"
    for path in out.rglob("*"):
        if path.is_file():
            assert REDIS_TEST_PASSWORD.encode() not in path.read_bytes(), path
    # Prefect 3 stores a run's parameters on its flow run (task runs keep no parameter values)
    with get_client(sync_client=True) as client:
        # newest first: the server returns at most a page of runs, and a long session makes many
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["distill-audit"])),
                                     sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=50)
    [run] = [r for r in runs if r.parameters.get("out") == str(out)]
    assert run.state is not None and run.state.is_completed(), run.state
    assert run.parameters["redis_url"] == "**********"
    assert REDIS_TEST_PASSWORD not in run.model_dump_json()
