"""--out safety and re-runs: an output is replaced only when distill-audit wrote it, and ingest
never reads its own (or any distill-audit) output back as input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.ingest import ingest
from pipeline.steps import build_index, minhash_params
from pipeline.storage import (
    CORPUS_OUTPUT,
    INDEX_OUTPUT,
    OutputExistsError,
    atomic_directory,
    check_replaceable,
    remove_output,
)
from sample_data.generate import SAMPLE_DIR
from tests.test_cli import _assert_one_line_error
from tests.test_ingest import assert_accounting
from tests.test_readers import sample, write_jsonl

runner = CliRunner()


def _run(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def _user_dir(path: Path) -> dict[str, str]:
    """A folder of the user's own files; returns what it holds, to compare afterwards."""
    (path / "sub").mkdir(parents=True)
    files = {"notes.txt": "keep me\n", "sub/data.csv": "a,b\n1,2\n"}
    for name, text in files.items():
        (path / name).write_text(text)
    return files


def _holds(path: Path, files: dict[str, str]) -> bool:
    found = {str(p.relative_to(path)): p.read_text() for p in path.rglob("*") if p.is_file()}
    return found == files


@pytest.fixture
def crawl(tmp_path, dev_human) -> Path:
    root = tmp_path / "crawl"
    root.mkdir()
    write_jsonl(root / "a.jsonl", sample(dev_human, 40))
    return root


# ------------------------------------------------------------------ refused overwrites


def test_ingest_refuses_a_user_folder_and_a_file_and_keeps_them(crawl, tmp_path) -> None:
    user = tmp_path / "userdir"
    files = _user_dir(user)
    line = _assert_one_line_error(_run("ingest", crawl, "--out", user), f"refusing to replace {user}",
                                  "not a distill-audit corpus", "manifest.json")
    assert "--out" in line
    assert _holds(user, files)
    a_file = tmp_path / "report.pdf"
    a_file.write_bytes(b"%PDF-1.4 the user's file")
    _assert_one_line_error(_run("ingest", crawl, "--out", a_file), f"refusing to replace {a_file}", "file")
    assert a_file.read_bytes() == b"%PDF-1.4 the user's file"
    # in process too (what the flows and library callers use), before anything is read or written
    with pytest.raises(OutputExistsError, match="not a distill-audit corpus"):
        ingest([crawl], user)
    assert _holds(user, files)
    # and no temporary directory is left next to them
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crawl", "report.pdf", "userdir"]


def test_index_and_detect_refuse_a_user_folder(crawl, tmp_path) -> None:
    user = tmp_path / "userdir"
    files = _user_dir(user)
    _assert_one_line_error(_run("index", "--teacher", SAMPLE_DIR / "teacher", "--out", user),
                           f"refusing to replace {user}", "not a distill-audit MinHash index", "index.json")
    corpus = tmp_path / "corpus"
    ingest([crawl], corpus)
    index_dir = tmp_path / "index"
    build_index([SAMPLE_DIR / "teacher"], index_dir, minhash_params(num_perm=64))
    _assert_one_line_error(_run("detect", corpus, "--index", index_dir, "--out", user),
                           f"refusing to replace {user}", "scores directory", "detectors.json")
    # another kind of distill-audit output is refused too: detect must not replace the corpus
    _assert_one_line_error(_run("detect", corpus, "--index", index_dir, "--out", corpus),
                           "it is a distill-audit corpus, not a scores directory")
    assert _holds(user, files)
    assert (corpus / "manifest.json").is_file()


def test_atomic_directory_refuses_before_the_block_runs(tmp_path) -> None:
    user = tmp_path / "userdir"
    files = _user_dir(user)
    ran = []
    with pytest.raises(OutputExistsError), atomic_directory(user, INDEX_OUTPUT):
        ran.append(True)
    assert not ran and _holds(user, files)
    link = tmp_path / "link"
    link.symlink_to(user, target_is_directory=True)
    with pytest.raises(OutputExistsError, match="symbolic link"):
        check_replaceable(link, CORPUS_OUTPUT)
    # a user's manifest.json that distill-audit did not write does not make a folder a corpus
    (user / "manifest.json").write_text(json.dumps({"schema_version": "1", "name": "my project"}))
    with pytest.raises(OutputExistsError, match="no manifest.json written by distill-audit"):
        check_replaceable(user, CORPUS_OUTPUT)


def test_remove_output_removes_only_its_own_kind(crawl, tmp_path) -> None:
    user = tmp_path / "userdir"
    files = _user_dir(user)
    corpus = tmp_path / "corpus"
    ingest([crawl], corpus)
    link = tmp_path / "link"
    link.symlink_to(corpus, target_is_directory=True)
    assert not remove_output(user, CORPUS_OUTPUT) and _holds(user, files)
    assert not remove_output(corpus, INDEX_OUTPUT)  # another kind
    assert not remove_output(link, CORPUS_OUTPUT) and link.is_symlink()  # not through a link
    assert not remove_output(tmp_path / "missing", CORPUS_OUTPUT)
    assert (corpus / "manifest.json").is_file()
    assert remove_output(corpus, CORPUS_OUTPUT)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crawl", "link", "userdir"]  # nothing left aside


# ------------------------------------------------------------------ re-runs still replace

def _untimed(inputs: list[dict]) -> list[dict]:
    return [{k: v for k, v in entry.items() if k != "seconds"} for entry in inputs]  # wall-clock


def test_rerun_into_own_output_and_into_an_empty_folder(crawl, tmp_path) -> None:
    out = tmp_path / "corpus"
    out.mkdir()  # an empty folder is fine to use
    first = ingest([crawl], out)
    (out / "docs" / "stale.parquet").write_bytes(b"left from an older run")
    second = ingest([crawl], out)  # the tool's own output: replaced as a whole
    assert first["counts"] == second["counts"]
    assert _untimed(first["inputs"]) == _untimed(second["inputs"])
    assert not (out / "docs" / "stale.parquet").exists()
    index_dir = tmp_path / "index"
    for _ in range(2):
        build_index([SAMPLE_DIR / "teacher"], index_dir, minhash_params(num_perm=64))
    assert INDEX_OUTPUT.recognises(index_dir)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "crawl", "index"]


# ------------------------------------------------------------------ own output inside an input folder


def _counts(manifest: dict) -> tuple:
    return manifest["counts"], [(e["path"], e["records_read"]) for e in manifest["inputs"]]


def test_ingest_twice_with_out_inside_the_input_folder(crawl, tmp_path) -> None:
    out = crawl / "out"
    first = ingest([crawl], out)
    second = ingest([crawl], out)
    assert_accounting(second)
    assert _counts(first) == _counts(second)
    assert [e["path"] for e in second["inputs"]] == [str(crawl / "a.jsonl")]
    assert first["skipped_outputs"] == [] and first["ignored_files"] == []
    assert second["skipped_outputs"] == [
        {"path": str(out), "reason": "the output directory of this run, a distill-audit corpus"}]
    assert second["ignored_files"] == []  # this run's temporary directory is not an input


def test_other_distill_audit_outputs_in_an_input_folder_are_skipped_and_listed(crawl, tmp_path) -> None:
    reference = ingest([crawl], tmp_path / "reference")
    build_index([SAMPLE_DIR / "teacher"], crawl / "runs" / "index", minhash_params(num_perm=64))
    ingest([crawl], crawl / "runs" / "old-corpus")
    (crawl / ".old.xyz.tmp").mkdir()  # a temporary sibling left by a crashed run: hidden, listed
    manifest = ingest([crawl], tmp_path / "corpus")
    assert _counts(manifest) == _counts(reference)
    assert manifest["skipped_outputs"] == [
        {"path": str(crawl / "runs" / "index"),
         "reason": "a distill-audit MinHash index (has its index.json), not input"},
        {"path": str(crawl / "runs" / "old-corpus"),
         "reason": "a distill-audit corpus (has its manifest.json), not input"},
    ]
    assert manifest["ignored_files"] == [str(crawl / ".old.xyz.tmp")]


@pytest.mark.prefect
def test_cli_ingest_twice_with_out_inside_the_input_folder(prefect_harness, crawl, tmp_path) -> None:
    out = crawl / "out"
    runs = [_run("ingest", crawl, "--out", out) for _ in range(2)]
    assert [r.exit_code for r in runs] == [0, 0], [r.output for r in runs]
    manifest = json.loads((out / "manifest.json").read_text())
    assert runs[0].stdout.strip() == runs[1].stdout.split("; left out")[0].strip()
    assert f"left out of the inputs: {out} (the output directory of this run" in runs[1].stdout
    assert [e["path"] for e in manifest["inputs"]] == [str(crawl / "a.jsonl")]
    assert manifest["ignored_files"] == []  # the flow's staging directory is not listed
    assert sorted(p.name for p in crawl.iterdir()) == ["a.jsonl", "out"]
