"""The report step: scores (and an optional pre-LLM baseline) -> report.json and a text summary.

``build_report(scores_dir, out_dir, baseline_scores_dir=None)`` estimates the teacher share
(documents and characters) and the any-LLM share for the corpus, per source and for the top
domains (see :mod:`pipeline.estimate`), judges each source and the corpus
(:mod:`pipeline.verdict`), and writes ``REPORT_DIR/report.json`` (schema version "1")
atomically. Scores from a different model or index than the baseline's are refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from pipeline.detect import read_scores
from pipeline.estimate import (
    DEFAULT_ESTIMATION_FPR,
    DEFAULT_METHOD,
    DEFAULT_TWO_LEVEL,
    DEFAULT_UNSEEN,
    METHODS,
    WILSON_BELOW,
    Calibrator,
    Placement,
    ScoreArrays,
    UnseenModels,
    calibration_summary,
    combine_estimates,
    estimate_group,
    estimation_thresholds,
    excess_test,
    two_level_view,
)
from pipeline.storage import atomic_write_json
from pipeline.verdict import (
    CLEAN,
    INCONCLUSIVE,
    PATTERN_NOTE,
    GroupRows,
    VerdictConfig,
    corpus_verdict,
    judge,
)

REPORT_SCHEMA_VERSION = "1"
REPORT_FILE = "report.json"
DEFAULT_TOP_DOMAINS = 20
DEFAULT_N_BOOT = 1000
#: what ``config`` of :func:`build_report` may hold (anything else is refused)
REPORT_CONFIG_KEYS = ("method", "n_boot", "top_domains", "estimation_fpr", "two_level", "verdict",
                      "unseen_models")


class ReportError(ValueError):
    """The report cannot be built from these inputs (one-line, user-facing reason)."""


#: Every report says it: the teacher share's interval is wide for this reason (pipeline.estimate).
UNSEEN_LLM_NOTE = (
    "Telling the teacher from other LLMs is the detectors' weakest point, both ways: LLMs the classifier "
    "was not trained on are taken for the teacher 3-5 times as often as those it was, and a teacher "
    "version it was not trained on (measured with GPT-4 held out) is mostly taken for another LLM. "
    "The teacher share's interval allows for both, so where a source holds much LLM text its interval "
    "spans from 'none of it is the teacher's' to 'all of it may be', and its verdict may be "
    "'inconclusive'; llm_share, text that looks like any LLM's, is the firmer figure."
)

#: ... and this one instead when the report's ``unseen_models`` settings are not the measured ones.
UNSEEN_SETTINGS_NOTE = (
    "Telling the teacher from other LLMs is the detectors' weakest point, both ways (see the "
    "project's README). This report's allowances for models the classifier never saw are not the "
    "measured defaults (inputs.unseen_models): its intervals hold only if the crawl's models are no "
    "further from those the classifier was trained on than these settings allow."
)


def check_compatible(info: Mapping[str, Any], baseline_info: Mapping[str, Any]) -> None:
    """Refuse a baseline scored with a different model or index than the audited corpus."""
    model, base_model = info.get("model"), baseline_info.get("model")
    if (model is None) != (base_model is None):
        raise ReportError("the baseline and the audited corpus were not scored with the same detectors "
                          "(one has a classifier model, the other not)")
    if model is not None:
        for key in ("model_id", "feature_version"):
            if model.get(key) != base_model.get(key):
                raise ReportError(f"the baseline was scored with a different model ({key} "
                                  f"{base_model.get(key)!r} vs {model.get(key)!r}): re-run detect on both")
    index, base_index = info.get("index"), baseline_info.get("index")
    if (index is None) != (base_index is None) or (index is not None and index != base_index):
        raise ReportError("the baseline was scored with a different MinHash index (its parameters, "
                          "references or format version differ): re-run detect on both")
    if info.get("format_version") != baseline_info.get("format_version"):
        raise ReportError("the baseline's _detectors.json has a different format version")


def _group_rows(table: pa.Table, arrays: ScoreArrays) -> GroupRows:
    n = table.num_rows
    if n == 0:
        e = np.zeros(0)
        return GroupRows(e.astype(bool), e.astype(bool), e.astype(bool), e.astype(bool), e, e, e,
                         np.zeros(0, dtype=object))
    structure = np.array(table.column("structure").to_pylist(), dtype=object)
    cs = table.column("cluster_size").to_numpy(zero_copy_only=False)
    cs = np.nan_to_num(cs.astype(np.float64), nan=0.0)
    dates = table.column("crawl_date").cast(pa.int64()).to_numpy(zero_copy_only=False)
    days = dates.astype(np.float64) / 86_400e6
    return GroupRows(
        flagged=(arrays.strata >= 0) & (arrays.strata <= 2),
        matched=arrays.strata == 0,
        self_id=np.array([any(m.startswith("self_id") for m in (ms or []))
                          for ms in table.column("markers").to_pylist()], dtype=bool),
        structured=np.array([s not in (None, "none") for s in structure], dtype=bool),
        cluster_size=cs,
        teacher_fraction=table.column("teacher_fraction").to_numpy(zero_copy_only=False).astype(np.float64),
        crawl_day=days,
        domain=arrays.domain,
    )


def _subset(rows: GroupRows, mask: np.ndarray) -> GroupRows:
    return GroupRows(**{k: None if getattr(rows, k) is None else getattr(rows, k)[mask]
                        for k in rows.__dataclass_fields__})


def _share_json(est: Mapping[str, Any], chars: Mapping[str, Any] | None, cal: dict[str, float]) -> dict:
    out = est.to_json()
    if chars is not None:
        c = chars.to_json()
        out["by_characters"] = {k: c[k] for k in ("estimate", "ci_low", "ci_high", "flagged_share")}
    out["calibration"] = cal
    return out


def check_report_config(config: Mapping[str, Any] | None) -> None:
    """Refuse a report ``config`` that :func:`build_report` would refuse, before any work is done
    (one :class:`ReportError` line naming the setting)."""
    config = dict(config or {})
    unknown = sorted(set(config) - set(REPORT_CONFIG_KEYS))
    if unknown:
        raise ReportError(f"unknown report setting(s): {', '.join(unknown)}; "
                          f"known: {', '.join(REPORT_CONFIG_KEYS)}")
    method = config.get("method", DEFAULT_METHOD)
    if method not in METHODS:
        raise ReportError(f"unknown estimation method {method!r}; choose one of {', '.join(METHODS)}")
    try:
        VerdictConfig.from_mapping(config.get("verdict"))
        UnseenModels.from_mapping(config.get("unseen_models"))
        # (name, type, smallest, largest)
        # (fewer than 20 replicates give no percentile interval, least of all two halves' of it)
        for key, kind, low, high in (("n_boot", int, 20, 1_000_000), ("top_domains", int, 0, 1_000_000),
                                     ("estimation_fpr", float, 0.0, 0.5)):
            value = config.get(key)
            if key in config and (isinstance(value, bool) or not isinstance(value, kind | int)
                                  or not low <= value <= high):
                raise ValueError(f"{key} must be a{'n integer' if kind is int else ' number'} in "
                                 f"[{low}, {high}], got {value!r}")
        if not isinstance(config.get("two_level", False), bool):
            raise ValueError(f"two_level must be true or false, got {config['two_level']!r}")
    except (TypeError, ValueError) as exc:
        raise ReportError(str(exc)) from exc


def report_from_tables(
    table: pa.Table,
    info: Mapping[str, Any],
    baseline: tuple[pa.Table, Mapping[str, Any]] | None = None,
    config: Mapping[str, Any] | None = None,
    seed: int = 0,
    inputs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The report dict from in-memory scores tables (what :func:`build_report` writes)."""
    config = dict(config or {})
    check_report_config(config)
    method = config.get("method", DEFAULT_METHOD)
    n_boot = int(config.get("n_boot", DEFAULT_N_BOOT))
    top_n = int(config.get("top_domains", DEFAULT_TOP_DOMAINS))
    vconfig = VerdictConfig.from_mapping(config.get("verdict"))
    unseen = UnseenModels.from_mapping(config.get("unseen_models"))
    if baseline is not None:
        check_compatible(info, baseline[1])
    rule = info.get("flag_rule", {})
    model = info.get("model") or {}
    metrics = model.get("metrics") or {}
    placement = (Placement.from_json(info["placement"]) if info.get("placement")
                 else Placement.from_reference_metrics(metrics))
    answer_share = float(placement.kinds.get("prompt_response", {}).get("answer_share", 1.0))
    arrays = ScoreArrays.from_table(table, rule, answer_share)
    base_arrays = ScoreArrays.from_table(baseline[0], rule, answer_share) if baseline is not None else None
    # the verdict's pattern signals look at documents flagged at the decision thresholds; the
    # shares count at the (lower) estimation thresholds when a baseline calibrates them
    rows = _group_rows(table, arrays)
    est_fpr = float(config.get("estimation_fpr", DEFAULT_ESTIMATION_FPR))
    # both threshold levels as separate strata (else only the estimation thresholds count)
    two_level = bool(config.get("two_level", DEFAULT_TWO_LEVEL))
    # the verdict's excess test counts both threshold levels whenever a baseline calibrates them
    test_view = two_level_view(arrays, base_arrays, placement, rule, vconfig.excess_test_fpr,
                               vconfig.excess_test_high_fpr) if vconfig.excess_test_fpr > 0 else None
    est_thresholds = None
    if base_arrays is not None and base_arrays.n:
        est_thresholds = estimation_thresholds(placement, rule, est_fpr)
    if est_thresholds is not None:
        if two_level:
            arrays, base_arrays, placement, _ = two_level_view(arrays, base_arrays, placement, rule, est_fpr)
        else:
            thr = (est_thresholds["teacher_threshold"], est_thresholds["segment_threshold"],
                   est_thresholds["llm_threshold"])
            arrays, base_arrays, placement = (arrays.at_thresholds(*thr), base_arrays.at_thresholds(*thr),
                                              placement.at_thresholds(*thr))
        rows.est_flagged = (arrays.strata >= 0) & (arrays.strata < arrays.n_strata - 1)
    calibrator = Calibrator(metrics, base_arrays, low_fpr=est_fpr or 0.01)
    cells = calibrator.cells(arrays)
    test_arrays, test_calibrator, test_placement = arrays, calibrator, placement
    if test_view is not None:
        test_arrays, test_placement = test_view[0], test_view[2]
        test_calibrator = Calibrator(metrics, test_view[1], low_fpr=vconfig.excess_test_fpr)
    test_cells = test_calibrator.cells(test_arrays)
    calibrated = base_arrays is not None and base_arrays.n > 0

    def group(mask: np.ndarray, seed_offset: int, use_domains: bool) -> dict[str, Any]:
        mix = calibrator.mix(cells, mask)
        flagged = rows.flagged & mask
        structured, plain = mask & rows.structured, mask & ~rows.structured
        res = None
        if structured.sum() >= WILSON_BELOW and plain.sum() >= WILSON_BELOW:
            # prompt/response documents and pages are caught at different rates: estimate each
            # part with its own true-positive mix and add them up (a share of *flagged*
            # documents would over-weight the easy-to-catch dumps)
            parts = []
            for part, ww, off in ((structured, 1.0, 0), (plain, 0.0, 7919)):
                est = estimate_group(arrays.counts(part), calibrator.mix(cells, part), placement,
                                     method=method, n_boot=n_boot, seed=seed + seed_offset + off,
                                     whole_weight=ww, unseen=unseen)
                parts.append((est, float(part.sum()), float(arrays.n_chars[part].sum())))
            res = combine_estimates(parts)
        if res is None:
            whole_weight = float(rows.structured[flagged].mean()) if flagged.any() else 0.0
            res = estimate_group(arrays.counts(mask), mix, placement, method=method, n_boot=n_boot,
                                 seed=seed + seed_offset, whole_weight=whole_weight, unseen=unseen)
        cal = calibration_summary(mix)
        weights = np.array([w for _, w in mix])
        weights = weights / weights.sum()
        expected = float(sum(w * float(np.nansum(m.point()[0][1:-1])) for (m, _), w in zip(mix, weights,
                                                                                         strict=True)))
        n = int(mask.sum())
        teacher = _share_json(res["teacher"], res["teacher_chars"], cal)
        llm = _share_json(res["llm"], None, cal)
        excess = None
        if n >= vconfig.min_documents:
            whole_weight = float(rows.structured[flagged].mean()) if flagged.any() else 0.0
            excess = excess_test(test_arrays.counts(mask), test_calibrator.mix(test_cells, mask),
                                 test_placement, whole_weight, seed=seed + seed_offset + 104_729,
                                 unseen=unseen, alpha=vconfig.excess_max_p)
        # the reason names the group's LLM text only when the interval allows it to be the teacher's
        verdict = judge(n, teacher, expected, _subset(rows, mask), vconfig, calibrated, use_domains, excess,
                        llm_share=llm if unseen.teacher_branch else None)
        return {"documents": n, "characters": int(arrays.n_chars[mask].sum()), "teacher_share": teacher,
                "llm_share": llm, "verdict": verdict}

    n = arrays.n
    everything = np.ones(n, dtype=bool)
    overall = group(everything, 0, True)
    sources = []
    for i, name in enumerate(sorted(set(arrays.source.tolist()))):
        entry = group(arrays.source == name, 1 + i, True)
        sources.append({"source": name, **entry})
    domain_names, domain_counts = np.unique(arrays.domain.astype(str), return_counts=True) if n else ([], [])
    flagged_by_domain = {d: int(rows.flagged[arrays.domain.astype(str) == d].sum()) for d in domain_names}
    top = sorted(zip(domain_names, domain_counts, strict=True),
                 key=lambda dc: (-flagged_by_domain[dc[0]], -dc[1], dc[0]))[:top_n]
    domains = []
    for j, (name, _) in enumerate(top):
        entry = group(arrays.domain.astype(str) == name, 10_000 + j, False)
        domains.append({"domain": name, **entry})
    if n == 0:
        verdict = corpus_verdict([], 0)
    else:
        verdict = corpus_verdict([(s["source"], s["verdict"]) for s in sources], n)
    notes = [PATTERN_NOTE, UNSEEN_LLM_NOTE if unseen == DEFAULT_UNSEEN else UNSEEN_SETTINGS_NOTE]
    used = overall["teacher_share"].get("method")
    if n and used and used != method:
        notes.append(f"Method {method!r} was asked for but could not be computed (it needs the detectors' "
                     "mean scores on placed teacher text, which only a placement calibration measures: run "
                     f"`distill-audit calibrate` on the model); the shares use method {used!r}.")
    if method != "acc" and unseen.teacher_branch and used == method:
        notes.append(f"Method {method!r}: the allowances for models the classifier never saw "
                     "(unseen_models) widen the intervals of method 'acc' only; this report's intervals "
                     "assume the crawl's models are those the classifier was trained on.")
    if not calibrated:
        notes.append("No pre-LLM baseline was given: false-positive rates come from the model's reference "
                     "figures, which do not transfer across genres (0% to over 50% per human genre), so the "
                     "intervals span that whole range and are wide. Give --baseline (pages of the same sites "
                     "crawled before November 2022) for tight intervals.")
    if not info.get("placement"):
        notes.append("No placement calibration in the model directory: the true-positive rate on teacher "
                     "text as it appears in crawls is taken to lie between 0.25 and the reference TPR.")
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "inputs": {**(inputs or {}), "method": method, "n_boot": n_boot, "seed": seed,
                   "verdict_config": {k: v for k, v in vconfig.__dict__.items()},
                   "unseen_models": asdict(unseen),
                   "baseline_documents": base_arrays.n if base_arrays is not None else 0},
        "corpus": {"documents": n, "characters": int(arrays.n_chars.sum()),
                   "sources": len(sources)},
        "teacher_share": overall["teacher_share"],
        "llm_share": overall["llm_share"],
        "verdict": verdict,
        "sources": sources,
        "domains": domains,
        "calibration": {
            "false_positive": "baseline per domain, then per source, then references" if calibrated
            else "references (model metrics): no baseline given",
            "true_positive": placement.source,
            "estimation_thresholds": est_thresholds,
            "estimation_fpr": est_fpr if est_thresholds is not None else None,
            "overall": overall["teacher_share"]["calibration"],
        },
        "notes": notes,
        "detectors": {"model": _model_summary(model), "index": info.get("index"),
                      "placement": Placement.from_json(info["placement"]).summary()
                      if info.get("placement") else None, "flag_rule": rule,
                      "versions": info.get("versions")},
    }


def _model_summary(model: Mapping[str, Any]) -> dict[str, Any] | None:
    if not model:
        return None
    return {k: model.get(k) for k in ("model_id", "feature_version", "threshold", "llm_threshold", "metrics")}


def build_report(
    scores_dir: str | Path,
    out_dir: str | Path,
    baseline_scores_dir: str | Path | None = None,
    config: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Write ``out_dir/report.json`` for the scores at ``scores_dir`` and return it.

    ``config`` may hold ``method`` ("cc", "acc", "pacc"), ``n_boot``, ``top_domains``,
    ``estimation_fpr`` (with a baseline: count the shares at classifier thresholds that held-out
    human pages exceed this often, see :func:`pipeline.estimate.estimation_thresholds`; default
    0, the decision thresholds; ``two_level`` counts both levels as strata), ``verdict`` (a
    mapping of :class:`pipeline.verdict.VerdictConfig` fields) and ``unseen_models`` (a mapping
    of :class:`pipeline.estimate.UnseenModels` fields: the allowances for models the classifier
    never saw). Unknown keys are refused.
    """
    table, info = read_scores(scores_dir)
    baseline = read_scores(baseline_scores_dir) if baseline_scores_dir is not None else None
    inputs = {"scores_dir": str(scores_dir),
              "baseline_scores_dir": str(baseline_scores_dir) if baseline_scores_dir else None}
    report = report_from_tables(table, info, baseline, config, seed, inputs)
    atomic_write_json(Path(out_dir) / REPORT_FILE, report)
    return report


def _pct(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{100 * x:.1f}%"


def summary_text(report: Mapping[str, Any]) -> str:
    """A plain-text summary of a report for the terminal."""
    corpus = report["corpus"]
    ts, ls, v = report["teacher_share"], report["llm_share"], report["verdict"]
    lines = [
        f"distill-audit report: {corpus['documents']:,} documents, {corpus['characters']:,} characters, "
        f"{corpus['sources']} source(s)",
        f"teacher share: {_pct(ts.get('estimate'))} of documents (95% CI {_pct(ts.get('ci_low'))}-"
        f"{_pct(ts.get('ci_high'))}, method {ts.get('method')}; raw flagged {_pct(ts.get('flagged_share'))})",
    ]
    chars = ts.get("by_characters")
    if chars:
        lines.append(f"  by characters: {_pct(chars.get('estimate'))} (95% CI {_pct(chars.get('ci_low'))}-"
                     f"{_pct(chars.get('ci_high'))})")
    lines.append(f"any-LLM share: {_pct(ls.get('estimate'))} (95% CI {_pct(ls.get('ci_low'))}-"
                 f"{_pct(ls.get('ci_high'))})")
    lines.append(f"verdict: {v['label']} (score {v['score']:.2f}) - {v.get('reason', '')}")
    for s in report.get("sources", [])[:20]:
        sv = s["verdict"]
        share = s["teacher_share"]
        detail = ""
        if sv["label"] == INCONCLUSIVE:
            detail = f" ({sv.get('reason')})"
        elif sv["label"] == CLEAN and "detectable_share" in sv:
            detail = f" (shares below about {_pct(sv['detectable_share'])} may go unnoticed)"
        lines.append(f"  source {s['source']}: {s['documents']:,} docs, teacher {_pct(share['estimate'])}"
                     f" [{_pct(share['ci_low'])}-{_pct(share['ci_high'])}] -> {sv['label']}{detail}")
    for note in report.get("notes", []):
        lines.append(f"note: {note}")
    return "\n".join(lines)
