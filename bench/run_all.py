"""Run every benchmark in turn (``make bench``); each prints its figures and updates its results file.

The per-stage results files (``bench/results_*.md``) hold the full tables and the exact
commands; ``bench/RESULTS.md`` summarises them. Timings need a quiet machine: on a shared
2-core box they drift by up to 3x (see the notes in each results file).
"""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS: list[list[str]] = [
    ["bench.bench_ingest", "--docs", "50000", "500000"],
    ["bench.bench_minhash"],
    ["bench.bench_classifier", "--speed-docs", "2000", "--fit-10k"],
    ["bench.bench_estimation", "--seeds", "20", "--n-boot", "400"],
    ["bench.unseen_llms", "--seeds", "20"],
]


def main() -> int:
    failed = []
    for module, *args in BENCHMARKS:
        print(f"\n=== python -m {module} {' '.join(args)}", flush=True)
        if subprocess.call([sys.executable, "-m", module, *args]) != 0:
            failed.append(module)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
