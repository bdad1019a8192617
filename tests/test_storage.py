"""pipeline.storage.load_arrays: CPython 3.11's spurious AST SystemError is retried, nothing else."""

from __future__ import annotations

import threading

import pytest

from pipeline.storage import load_arrays


def _flaky(failures: int, message: str):
    calls = []

    def load():
        calls.append(threading.get_ident())
        if len(calls) <= failures:
            raise SystemError(message)
        return "arrays"

    return load, calls


def test_the_ast_race_is_retried_and_other_errors_are_not() -> None:
    race = "AST constructor recursion depth mismatch (before=120, after=117)"
    load, calls = _flaky(1, race)
    assert load_arrays(load) == "arrays" and len(calls) == 2
    load, calls = _flaky(5, race)
    with pytest.raises(SystemError, match="recursion depth mismatch"):
        load_arrays(load, attempts=3)
    assert len(calls) == 3
    load, calls = _flaky(1, "some other interpreter error")
    with pytest.raises(SystemError, match="some other"):
        load_arrays(load)
    assert len(calls) == 1


def test_loads_run_one_at_a_time() -> None:
    inside, overlaps = [], []
    gate = threading.Barrier(4)

    def load():
        inside.append(1)
        overlaps.append(len(inside))
        threading.Event().wait(0.01)
        inside.pop()
        return True

    def worker():
        gate.wait()
        for _ in range(5):
            load_arrays(load)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(overlaps) == 20 and max(overlaps) == 1


def test_outputs_get_the_modes_of_new_files_not_private_temporary_ones(tmp_path, monkeypatch):
    """tempfile makes files 0600 and folders 0700; renamed into place they kept them, so a
    report or corpus was readable by its owner only. Outputs get FILE_MODE / DIR_MODE (the
    umask's modes); pinned here to 0644 / 0755 so the check holds under any umask."""
    import stat

    import pyarrow as pa

    from pipeline import storage

    monkeypatch.setattr(storage, "FILE_MODE", 0o644)
    monkeypatch.setattr(storage, "DIR_MODE", 0o755)
    storage.atomic_write_json(tmp_path / "report.json", {"a": 1})
    storage.write_table(tmp_path / "t.parquet", pa.table({"x": [1]}))
    with storage.atomic_directory(tmp_path / "idx", storage.INDEX_OUTPUT) as tmp:
        (tmp / "index.json").write_text('{"format": "distill-audit/minhash-index"}')
    assert stat.S_IMODE((tmp_path / "report.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "t.parquet").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "idx").stat().st_mode) == 0o755
