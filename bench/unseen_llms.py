"""Scenarios whose other LLMs, or teacher versions, the classifier never saw (issue #5: does the
estimate still hold?).

Run: ``OMP_NUM_THREADS=1 .venv/bin/python -m bench.unseen_llms [--seeds 20]`` (about 3 minutes per
held-out group, the first time; detectors and scores are cached under ``--out``).

The scenario benchmark (:mod:`bench.bench_estimation`) draws the crawl's other-LLM text from the
same models the classifier was trained on. A real crawl's other LLMs are newer models, and the
sealed acceptance set holds other LLMs that dev lacks. So, for each group of models below, the
bench's detectors are trained and calibrated *without* that group, and the group's texts (all
of them) are the scenarios' other-LLM text: on crawl pages and as instruction-format answers.

The teacher side (``TEACHER_GROUPS``): the sealed set also holds OpenAI model versions that dev
lacks. For each group of dev's OpenAI models, the detectors are trained, and the placement
calibration measured, on the *other* OpenAI models only, and the scenarios' teacher text is the
group's texts whose prompts are outside the train pool (so no prompt is shared with training).

Printed per group, and written to ``--out``/unseen_llms.json: how often the group's pages are
flagged as the teacher, beside the placement's (seen) other LLMs and the teacher's own pages;
then, over ``--seeds`` runs of the group's scenarios (``hard_negative`` and ``incidental`` for
other LLMs; ``incidental``, ``deliberate`` and ``mixed`` for teacher versions) with a baseline
(and without), the source verdicts, CI coverage and the error of the overall teacher share.
"""

from __future__ import annotations

import argparse
import collections
import json
import time
from pathlib import Path

import numpy as np

import bench.scenarios as scenarios
from bench.bench_estimation import _excess_p, _take, prepare_detectors, score_universe
from bench.scenarios import DEV_DIR, ROOT
from pipeline.report import report_from_tables

#: model groups left out of training (the ``model`` field of dev's other-LLM records)
GROUPS = {
    "claude+qwen": ("claude-2", "claude-instant-1.2", "Qwen1.5-72B-Chat"),
    "google": ("gemini-pro", "Gemini-1.5-Pro", "text-bison-002"),
    "llama+mixtral": ("llama-2-70b-chat-hf", "llama-2-70b-chat", "Llama-2-70b-chat-hf",
                      "Mixtral-8x7B-Instruct-v0.1"),
    "flan-t5": ("flan-t5-xxl",),
}
#: OpenAI model groups left out of training and calibration (the ``model`` field of dev's
#: teacher records); the rest of dev's OpenAI models are the teacher the detectors know
TEACHER_GROUPS = {
    "teacher:gpt-4": ("gpt4_0314", "gpt4_0613", "gpt-4"),
    "teacher:davinci-003": ("text-davinci-003", "text_davinci_003"),
    # checked after the allowance's settings were chosen on the two groups above
    "teacher:gpt-3.5-0613": ("gpt-3.5-turbo-0613",),
}
SCENARIO_NAMES = ("hard_negative", "incidental")
TEACHER_SCENARIO_NAMES = ("incidental", "deliberate", "mixed")


def universe_without(group: tuple[str, ...], human, teacher, other):
    """(seen other-LLM records, universe whose other-LLM documents are all the group's texts)."""
    held = [r for r in other if r.get("model") in group]
    seen = [r for r in other if r.get("model") not in group]
    return seen, scenarios.build_universe(human, teacher, held, other_llm_all_scenario=True)


def universe_without_teacher(group: tuple[str, ...], human, teacher, other):
    """(seen teacher records, universe whose teacher documents are the group's texts outside
    the train pool: prompt-disjoint from the seen models' training texts)."""
    held = [r for r in teacher if r.get("model") in group and scenarios.pool_of(r) != "train"]
    seen = [r for r in teacher if r.get("model") not in group]
    return seen, scenarios.build_universe(human, held, other, teacher_all_scenario=True)


def flag_rates(table, universe) -> dict[str, float]:
    kind = {d["doc_id"]: d["kind"] for d in universe.docs}
    flagged: dict[str, list[bool]] = collections.defaultdict(list)
    columns = table.column("doc_id").to_pylist(), table.column("flagged").to_pylist()
    for doc_id, flag in zip(*columns, strict=True):
        flagged[kind[doc_id]].append(bool(flag))
    return {k: round(float(np.mean(v)), 3) for k, v in sorted(flagged.items())}


def run_group(name: str, group: tuple[str, ...], seeds: int, out: Path, n_boot: int,
              report_config: dict | None = None) -> dict:
    human, teacher, other = scenarios.load_dev_records(DEV_DIR)
    if name in TEACHER_GROUPS:
        seen, universe = universe_without_teacher(group, human, teacher, other)
        model_dir, index_dir = prepare_detectors(out, human, seen, other, log=lambda *a: None)
        scenario_names = TEACHER_SCENARIO_NAMES
    else:
        seen, universe = universe_without(group, human, teacher, other)
        model_dir, index_dir = prepare_detectors(out, human, teacher, seen, log=lambda *a: None)
        scenario_names = SCENARIO_NAMES
    table, info = score_universe(out, universe, model_dir, index_dir, log=lambda *a: None)
    placement = {k: round(sum(v["strata"][:3]) / max(v["n"], 1), 3)
                 for k, v in info["placement"]["kinds"].items()}
    result = {"group": name, "models": list(group), "flagged": flag_rates(table, universe),
              "placement_flagged": placement, "scenarios": {}}
    for scenario in scenario_names:
        verdicts: collections.Counter = collections.Counter()
        cover = {True: [], False: []}
        errors, truths, clean_p = [], [], []
        for seed in range(seeds):
            sc = scenarios.build_scenario(scenario, seed, universe)
            corpus = _take(table, [universe.docs[i]["doc_id"] for i in sc.corpus])
            base = _take(table, [universe.docs[i]["doc_id"] for i in sc.baseline])
            for with_base in (True, False):
                rep = report_from_tables(corpus, info, (base, info) if with_base else None,
                                         {"n_boot": n_boot, "top_domains": 0, **(report_config or {})}, seed)
                share = rep["teacher_share"]
                truth = sc.truth["teacher_share"]
                cover[with_base].append(share["ci_low"] - 1e-9 <= truth <= share["ci_high"] + 1e-9)
                if with_base:
                    errors.append(share["estimate"] - truth)
                    truths.append(truth)
                for src in rep["sources"]:
                    expected = sc.truth["sources"][src["source"]]["verdict"]
                    key = f'{"baseline" if with_base else "no baseline"}: {src["source"]} ({expected})'
                    verdicts[(key, src["verdict"]["label"])] += 1
                    if with_base and expected == "clean" and _excess_p(src["verdict"]) is not None:
                        clean_p.append(_excess_p(src["verdict"]))
        by_source: dict[str, dict[str, int]] = {}
        for (key, label), count in sorted(verdicts.items()):
            by_source.setdefault(key, {})[label] = count
        result["scenarios"][scenario] = {
            "verdicts": by_source,
            "ci_coverage": float(np.mean(cover[True])),
            "ci_coverage_no_baseline": float(np.mean(cover[False])),
            "mean_true_share_pp": 100 * float(np.mean(truths)),
            "mean_err_pp": 100 * float(np.mean(errors)),
            "max_abs_err_pp": 100 * float(np.max(np.abs(errors))),
            "smallest_clean_p": min(clean_p) if clean_p else None,
        }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--n-boot", type=int, default=200)
    parser.add_argument("--groups", default=",".join([*GROUPS, *TEACHER_GROUPS]),
                        help="comma-separated names of GROUPS and TEACHER_GROUPS")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "estimation")
    parser.add_argument("--report-config", default="",
                        help='JSON report settings, e.g. \'{"unseen_models": {"teacher_other_likeness": 0, '
                             '"teacher_min_detectability": 1}}\' (session 4\'s estimator)')
    args = parser.parse_args(argv)
    if not DEV_DIR.is_dir():
        print(f"dev data not found at {DEV_DIR}")
        return 2
    results = []
    for name in args.groups.split(","):
        started = time.perf_counter()
        results.append(run_group(name, {**GROUPS, **TEACHER_GROUPS}[name], args.seeds, args.out, args.n_boot,
                                 json.loads(args.report_config) if args.report_config else None))
        print(json.dumps(results[-1], indent=1), flush=True)
        print(f"({name}: {time.perf_counter() - started:.0f} s)", flush=True)
    # the tables of bench/results_estimation.md ("Session 4", "Session 5") are read from this file
    out_file = args.out / ("unseen_llms-configured.json" if args.report_config else "unseen_llms.json")
    out_file.write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
