"""Scenario benchmark of the share estimators and verdicts (issue #5 targets).

Run: ``.venv/bin/python -m bench.bench_estimation [--seeds 20] [--out bench/out/estimation]``

1. Splits ``../shared/data/dev`` into disjoint pools (see :mod:`bench.scenarios`), trains the
   classifier (``detectors.classifier.train_model``) and the MinHash reference index on the
   ``train`` pool, and measures the placement calibration on the ``placement`` pool. All
   three are cached under ``--out`` (keyed by the pools), so reruns are fast.
2. Writes the scenario universe as one corpus and runs :func:`pipeline.detect.detect` on it
   once (cached too). Per-document scores do not depend on the other documents, except
   ``cluster_size``, which is computed over the universe instead of per scenario corpus.
3. For every scenario and seed, selects the scenario's rows and its baseline's rows and
   builds the report with and without the baseline, for each method (cc, acc, pacc; and with
   a baseline ``acc@0.01``, ACC at the lower estimation thresholds, ``estimation_fpr`` 0.01).
4. Prints the targets table and writes ``bench/results_estimation.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bench.scenarios import (
    DEV_DIR,
    ROOT,
    SCENARIOS,
    build_scenario,
    build_universe,
    load_dev_records,
    split_pools,
    write_corpus,
)
from pipeline.detect import calibrate_placement, detect, read_scores
from pipeline.report import report_from_tables
from pipeline.storage import SCORES_OUTPUT

RESULTS = ROOT / "bench" / "results_estimation.md"


def _pool_key(records: list[dict]) -> str:
    h = hashlib.sha256()
    for r in records:
        h.update(r["id"].encode())
    return h.hexdigest()[:16]


#: Sources whose change makes a trained model or index stale (the cache key includes their text).
DETECTOR_CODE = ("detectors/classifier.py", "detectors/features.py", "detectors/segments.py",
                 "detectors/minhash.py", "detectors/shingles.py")


#: ... and whose change makes cached universe scores stale (the scoring step itself).
SCORING_CODE = ("pipeline/detect.py", "detectors/structure.py", "detectors/markers.py",
                "detectors/clusters.py")


def detector_code_key(files: tuple[str, ...] = DETECTOR_CODE) -> str:
    """A hash of the detector code, so a cached model/index is retrained when the code changes."""
    h = hashlib.sha256()
    for rel in files:
        path = ROOT / rel
        h.update(rel.encode())
        h.update(path.read_bytes() if path.is_file() else b"")
    return h.hexdigest()[:8]


def prepare_detectors(out: Path, human, teacher, other, log=print) -> tuple[Path, Path]:
    """Train (or reuse) the model and index on the train pools; measure the placement calibration."""
    from detectors.classifier import train_model
    from detectors.minhash import ReferenceIndex

    hp, tp, op = split_pools(human), split_pools(teacher), split_pools(other)
    key = f'{_pool_key(hp["train"] + tp["train"] + op["train"])}-{detector_code_key()}'
    model_dir, index_dir = out / f"model-{key}", out / f"index-{key}"
    if not (model_dir / "metrics.json").is_file():
        t0 = time.perf_counter()
        train_model(tp["train"], hp["train"], op["train"], model_dir, random_state=0)
        log(f"trained the classifier on {len(tp['train'])}/{len(hp['train'])}/{len(op['train'])} "
            f"teacher/human/other-LLM texts in {time.perf_counter() - t0:.0f} s")
    if not (index_dir / "index.json").exists() and not any(index_dir.glob("*")):
        t0 = time.perf_counter()
        ReferenceIndex().fit([r["text"] for r in tp["train"]], [r["id"] for r in tp["train"]]).save(index_dir)
        log(f"indexed {len(tp['train'])} reference outputs in {time.perf_counter() - t0:.0f} s")
    # always re-measured (about half a minute): it must follow the current flag rule
    t0 = time.perf_counter()
    hosts = [r["text"] for r in hp["placement"] if len(r["text"]) > 200]
    calibrate_placement(model_dir, [r["text"] for r in tp["placement"]], hosts,
                        [r["text"] for r in op["placement"]], n_per_kind=300, seed=0,
                        teacher_prompts=[r.get("prompt") for r in tp["placement"]])
    log(f"placement calibration in {time.perf_counter() - t0:.0f} s")
    return model_dir, index_dir


def score_universe(out: Path, universe, model_dir: Path, index_dir: Path, log=print) -> tuple[pa.Table, dict]:
    # the scores depend on the model only; _detectors.json's placement is refreshed below
    # keyed on the model, the index and the universe's documents
    model_id = hashlib.sha256((model_dir / "metrics.json").read_bytes() + index_dir.name.encode()
                              + detector_code_key(SCORING_CODE).encode()
                              + "\n".join(d["doc_id"] for d in universe.docs).encode()).hexdigest()[:12]
    scores_dir = out / f"universe-scores-{model_id}"
    if not SCORES_OUTPUT.recognises(scores_dir):
        corpus_dir = write_corpus(universe.docs, out / "universe-corpus")
        t0 = time.perf_counter()
        res = detect(corpus_dir, scores_dir, model_dir=model_dir, index_dir=index_dir)
        dt = time.perf_counter() - t0
        log(f"detect on the universe: {res['documents']} documents in {dt:.0f} s "
            f"({res['documents'] / dt:.0f} docs/s, shared noisy CPU)")
    table, info = read_scores(scores_dir)
    info = {**info, "placement": json.loads((model_dir / "placement.json").read_text())}
    return table, info


def _take(table: pa.Table, ids: list[str]) -> pa.Table:
    return table.filter(pc.is_in(table.column("doc_id"), value_set=pa.array(ids)))


#: "acc@F": ACC counted at estimation thresholds where held-out human pages score F above them
METHODS = ("cc", "acc", "pacc", "acc@0.01", "acc2@0.01")


def run(seeds: int, out: Path, methods=METHODS, n_boot: int = 400, log=print) -> dict:
    human, teacher, other = load_dev_records(DEV_DIR)
    out.mkdir(parents=True, exist_ok=True)
    model_dir, index_dir = prepare_detectors(out, human, teacher, other, log)
    universe = build_universe(human, teacher, other)
    table, info = score_universe(out, universe, model_dir, index_dir, log)
    rows = []
    t0 = time.perf_counter()
    for name in SCENARIOS:
        for seed in range(seeds):
            sc = build_scenario(name, seed, universe)
            corpus = _take(table, [universe.docs[i]["doc_id"] for i in sc.corpus])
            base = _take(table, [universe.docs[i]["doc_id"] for i in sc.baseline])
            truth = sc.truth
            for with_base in (True, False):
                for method in methods:
                    if "@" in method and not with_base:
                        continue  # estimation thresholds need a baseline
                    base_method, _, fpr = method.partition("@")
                    cfg = {"method": base_method.removesuffix("2"), "n_boot": n_boot, "top_domains": 0,
                           "estimation_fpr": float(fpr or 0.0), "two_level": base_method == "acc2"}
                    rep = report_from_tables(corpus, info, (base, info) if with_base else None, cfg, seed)
                    ts = rep["teacher_share"]
                    src_ok = {s["source"]: s["verdict"]["label"] for s in rep["sources"]}
                    expected = {k: v["verdict"] for k, v in truth["sources"].items()}
                    rows.append({
                        "scenario": name, "seed": seed, "baseline": with_base, "method": method,
                        "truth": truth["teacher_share"], "estimate": ts["estimate"], "ci_low": ts["ci_low"],
                        "ci_high": ts["ci_high"], "cc": ts["flagged_share"],
                        "truth_chars": truth["teacher_char_share"],
                        "est_chars": ts["by_characters"]["estimate"],
                        "chars_low": ts["by_characters"]["ci_low"],
                        "chars_high": ts["by_characters"]["ci_high"],
                        "source_verdicts": src_ok, "expected": expected,
                        "source_excess_p": {s["source"]: _excess_p(s["verdict"]) for s in rep["sources"]},
                        "corpus_verdict": rep["verdict"]["label"],
                    })
        log(f"{name}: {seeds} seeds done ({time.perf_counter() - t0:.0f} s so far)")
    return {"rows": rows, "detectors": info, "model_dir": str(model_dir)}


def _excess_p(verdict: dict) -> float | None:
    return next((e["value"] for e in verdict["evidence"] if e["signal"] == "excess_test_p"), None)


#: contaminated shares of the crawl for the power sweep
POWER_RATES = (0.005, 0.01, 0.02, 0.03, 0.05, 0.08)


def power_sweep(seeds: int, out: Path, n_boot: int = 200, log=print) -> list[dict]:
    """How often the default report calls a crawl with a fixed contaminated share incidental.

    2,000 crawl pages with a 1,500-page baseline, the default method; per share: the share
    of runs labelled incidental, inconclusive or clean, the median excess-test p, and the median
    ``detectable_share`` the report claims (the share it finds about half the time: a check of
    that claim on real text).
    """
    human, teacher, other = load_dev_records(DEV_DIR)
    model_dir, index_dir = prepare_detectors(out, human, teacher, other, log)
    universe = build_universe(human, teacher, other)
    table, info = score_universe(out, universe, model_dir, index_dir, log)
    rows = []
    for rate in POWER_RATES:
        labels, pvals, limits = [], [], []
        for seed in range(seeds):
            sc = build_scenario("incidental", seed, universe, incidental_rate=rate)
            corpus = _take(table, [universe.docs[i]["doc_id"] for i in sc.corpus])
            base = _take(table, [universe.docs[i]["doc_id"] for i in sc.baseline])
            rep = report_from_tables(corpus, info, (base, info), {"n_boot": n_boot, "top_domains": 0}, seed)
            crawl = next(s for s in rep["sources"] if s["source"] == "crawl")
            labels.append(crawl["verdict"]["label"])
            pvals.append(_excess_p(crawl["verdict"]))
            limits.append(crawl["verdict"].get("detectable_share", np.nan))
        rows.append({"rate": rate, "runs": seeds, **{k: labels.count(k) / seeds
                                                     for k in ("incidental", "inconclusive", "clean")},
                     "median_p": float(np.median([p for p in pvals if p is not None] or [np.nan])),
                     "median_detectable": float(np.nanmedian(limits))})
        log(f"power: {rate:.3f} done")
    return rows


def power_md(rows: list[dict]) -> str:
    lines = ["| contaminated share of the crawl | runs | incidental | inconclusive | clean "
             "| median excess-test p | median detectable share claimed |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {100 * r['rate']:.1f}% | {r['runs']} | {r['incidental']:.2f} "
                     f"| {r['inconclusive']:.2f} | {r['clean']:.2f} | {r['median_p']:.3g} "
                     f"| {100 * r['median_detectable']:.2f}% |")
    return "\n".join(lines)


def _verdict_ok(r: dict) -> bool:
    if r["baseline"]:
        return r["source_verdicts"] == r["expected"]
    # without a baseline an honest "inconclusive" is allowed; a wrong conclusive label is not
    return all(got in (exp, "inconclusive") for got, exp in
               ((r["source_verdicts"].get(k), v) for k, v in r["expected"].items()))


def summarise(rows: list[dict]) -> list[dict]:
    out = []
    keys = sorted({(r["scenario"], r["baseline"], r["method"]) for r in rows},
                  key=lambda k: (SCENARIOS.index(k[0]), not k[1], k[2]))
    for sc, base, method in keys:
        rs = [r for r in rows if (r["scenario"], r["baseline"], r["method"]) == (sc, base, method)]
        err = np.array([abs(r["estimate"] - r["truth"]) for r in rs])
        cc_err = np.array([abs(r["cc"] - r["truth"]) for r in rs])
        cover = np.mean([r["ci_low"] - 1e-9 <= r["truth"] <= r["ci_high"] + 1e-9 for r in rs])
        cover_c = np.mean([r["chars_low"] - 1e-9 <= r["truth_chars"] <= r["chars_high"] + 1e-9 for r in rs])
        clean_wrong = sum(1 for r in rs for k, v in r["source_verdicts"].items()
                          if r["expected"].get(k) == "clean" and v in ("incidental", "deliberate-style"))
        clean_p = [p for r in rs for k, p in r.get("source_excess_p", {}).items()
                   if r["expected"].get(k) == "clean" and p is not None]
        out.append({
            "min_clean_p": min(clean_p) if clean_p else None,
            "scenario": sc, "baseline": "yes" if base else "no", "method": method, "runs": len(rs),
            "truth_mean": float(np.mean([r["truth"] for r in rs])),
            "mean_abs_err_pp": 100 * float(err.mean()), "max_abs_err_pp": 100 * float(err.max()),
            "cc_mean_abs_err_pp": 100 * float(cc_err.mean()),
            "ci_coverage": float(cover),
            "ci_width_pp": 100 * float(np.mean([r["ci_high"] - r["ci_low"] for r in rs])),
            "char_coverage": float(cover_c),
            "verdict_acc": float(np.mean([_verdict_ok(r) for r in rs])),
            "clean_called_contaminated": clean_wrong,
            "corpus_verdicts": dict(sorted({v: sum(r["corpus_verdict"] == v for r in rs)
                                            for v in {r["corpus_verdict"] for r in rs}}.items())),
        })
    return out


def table_md(summary: list[dict]) -> str:
    head = ("| scenario | baseline | method | runs | true share | mean abs err (pp) | max abs err (pp) | "
            "CC mean abs err (pp) | CI coverage | CI width (pp) | chars CI coverage | verdict acc | "
            "clean called contaminated | corpus verdicts |")
    lines = [head, "|" + "---|" * 14]
    for s in summary:
        lines.append(
            f"| {s['scenario']} | {s['baseline']} | {s['method']} | {s['runs']} "
            f"| {100 * s['truth_mean']:.2f}% | "
            f"{s['mean_abs_err_pp']:.2f} | {s['max_abs_err_pp']:.2f} | {s['cc_mean_abs_err_pp']:.2f} | "
            f"{s['ci_coverage']:.2f} | {s['ci_width_pp']:.1f} | {s['char_coverage']:.2f} "
            f"| {s['verdict_acc']:.2f} | "
            f"{s['clean_called_contaminated']} | {json.dumps(s['corpus_verdicts'])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "estimation")
    parser.add_argument("--n-boot", type=int, default=400)
    parser.add_argument("--no-write", action="store_true",
                        help="print only; do not write results_estimation.md")
    parser.add_argument("--power-seeds", type=int, default=0,
                        help="also run the power sweep (fixed contaminated shares) with this many seeds")
    args = parser.parse_args(argv)
    if not DEV_DIR.is_dir():
        print(f"dev data not found at {DEV_DIR}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    result = run(args.seeds, args.out, n_boot=args.n_boot)
    summary = summarise(result["rows"])
    md = table_md(summary)
    print(md)
    min_p = {s["scenario"]: round(s["min_clean_p"], 4) for s in summary
             if s["min_clean_p"] is not None and s["baseline"] == "yes" and s["method"] == "acc"}
    min_p_line = ("Smallest excess-test p of a clean source (with a baseline; the test is the same for every "
                  "method; it rejects below 0.01): "
                  f"{json.dumps(min_p)}.")
    print(min_p_line)
    power = ""
    if args.power_seeds:
        power = power_md(power_sweep(args.power_seeds, args.out))
        print(power)
    elapsed = time.perf_counter() - t0
    (args.out / "rows.json").write_text(json.dumps(result["rows"], default=str))
    if not args.no_write:
        model = result["detectors"].get("model") or {}
        placement = result["detectors"].get("placement") or {}
        tprs = {k: round(sum(v["strata"][:3]) / max(v["n"], 1), 3)
                for k, v in placement.get("kinds", {}).items()}
        text = "\n".join([
            "# Estimation and verdict: scenario benchmark",
            "",
            "Command: `.venv/bin/python -m bench.bench_estimation "
            f"--seeds {args.seeds} --n-boot {args.n_boot}"
            f"{f' --power-seeds {args.power_seeds}' if args.power_seeds else ''}` "
            f"(total {elapsed:.0f} s on the shared 2-core machine; timings are noisy).",
            "",
            f"Detectors: classifier {model.get('model_id', '?')[:12]} (threshold {model.get('threshold')}, "
            f"reference operating point {json.dumps((model.get('metrics') or {}).get('operating_point'))}), "
            "MinHash index of the train pool. Placement TPRs (flagged share per placement kind, "
            "held-out pool): "
            f"{json.dumps(tprs)}.",
            "",
            md,
            "",
            min_p_line,
            "",
        ])
        if power:
            text += "\n".join([
                "Power of the verdict (default method, 2,000 crawl pages, 1,500-page baseline; "
                f"`--power-seeds {args.power_seeds}`):", "", power, ""])
        # the hand-written sections below the tables (from the first "## " heading) survive a rerun
        old = RESULTS.read_text(encoding="utf-8") if RESULTS.is_file() else ""
        if "\n## " in old:
            text += old[old.index("\n## "):]
        RESULTS.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
