"""Probe (issue #5, session 6): is a pure instruction-format human Q/A source called clean?

Run: ``OMP_NUM_THREADS=1 .venv/bin/python -m bench.hard_negative_pure [--seeds 20]`` after
``bench.bench_estimation`` (it reuses its cached detectors and universe scores; about 2 minutes).
Figures in bench/results_estimation.md, "Session 6".

The ``hard_negative`` scenario's ``instruct-human`` source holds 300 human Q/A pages in
instruction format and 60 other LLMs' answers. Here the other-LLM answers are left out, so the
source is format only: the issue requires it to come out ``clean`` ("format alone is not
evidence"). Printed: its verdicts with a baseline, and per seed the teacher share's upper end.
"""

from __future__ import annotations

import argparse
from collections import Counter

from bench.bench_estimation import _take, prepare_detectors, score_universe
from bench.scenarios import (
    DEV_DIR,
    HUMAN_INSTRUCT_SOURCE,
    ROOT,
    build_scenario,
    build_universe,
    load_dev_records,
)
from pipeline.report import report_from_tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--n-boot", type=int, default=400)
    args = parser.parse_args()
    out = ROOT / "bench" / "out" / "estimation"
    human, teacher, other = load_dev_records(DEV_DIR)
    model_dir, index_dir = prepare_detectors(out, human, teacher, other)
    universe = build_universe(human, teacher, other)
    table, info = score_universe(out, universe, model_dir, index_dir)
    labels: Counter[str] = Counter()
    print("| seed | documents | teacher share | 95% CI | verdict |")
    print("|---|---:|---:|---|---|")
    for seed in range(args.seeds):
        scenario = build_scenario("hard_negative", seed, universe)
        pure = [i for i, row in zip(scenario.corpus, universe.rows(scenario.corpus), strict=True)
                if not (row["source"] == HUMAN_INSTRUCT_SOURCE and row["kind"].startswith("other"))]
        corpus = _take(table, [universe.docs[i]["doc_id"] for i in pure])
        baseline = _take(table, [universe.docs[i]["doc_id"] for i in scenario.baseline])
        report = report_from_tables(corpus, info, (baseline, info),
                                    {"n_boot": args.n_boot, "top_domains": 0}, seed)
        source = next(s for s in report["sources"] if s["source"] == HUMAN_INSTRUCT_SOURCE)
        share = source["teacher_share"]
        labels[source["verdict"]["label"]] += 1
        print(f"| {seed} | {source['documents']} | {share['estimate']:.2%} | "
              f"{share['ci_low']:.2%}-{share['ci_high']:.2%} | {source['verdict']['label']} |")
    print(f"\nverdicts of the pure instruction-format human source: {dict(labels)}")


if __name__ == "__main__":
    main()
