"""Time ``TeacherModel.score_documents`` on the speed benchmark's 1,000 2 KB documents with a saved
model, to compare code versions alternately on one busy machine.

    PYTHONPATH=TREE OMP_NUM_THREADS=1 taskset -c 1 .venv/bin/python bench/time_scoring.py MODEL_DIR [REPEATS]

Run it as a file (not ``-m``), so that ``detectors`` is imported from ``TREE`` (e.g. an older commit
exported with ``git archive``), and alternate the trees. ``PYTHONPATH=TREE`` is needed: run as a
file, ``bench`` is importable only from it, so the timed documents come from ``TREE``'s
``bench.bench_classifier`` too (the same in every tree since session 3). ``MODEL_DIR``: e.g. the model
``bench.check_scores_identical save`` writes. Prints the best and median docs/s of ``REPEATS`` runs,
in CPU time of the process (less disturbed by other jobs on the core) and in wall time.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

from threadpoolctl import threadpool_limits

import detectors
from bench.bench_classifier import _load, _two_kb_docs
from detectors.classifier import load_model


def main() -> None:
    model_dir = sys.argv[1]
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    docs = _two_kb_docs(_load("openai") + _load("human"), 1000)
    model = load_model(model_dir)
    cpu, wall = [], []
    with threadpool_limits(limits=1):
        model.score_documents(docs[:200])  # warm-up
        for _ in range(repeats):
            started_wall, started_cpu = time.perf_counter(), time.process_time()
            model.score_documents(docs)
            cpu.append(len(docs) / (time.process_time() - started_cpu))
            wall.append(len(docs) / (time.perf_counter() - started_wall))
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"{os.path.dirname(os.path.dirname(detectors.__file__))}: cpu best {max(cpu):,.0f} median "
        f"{statistics.median(cpu):,.0f} | wall best {max(wall):,.0f} median {statistics.median(wall):,.0f} "
        f"docs/s (load {load})"
    )


if __name__ == "__main__":
    main()
