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
