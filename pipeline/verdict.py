"""Provenance verdicts: deliberate-style, incidental, clean or inconclusive, with evidence.

The rules are deliberately simple and every threshold lives in :class:`VerdictConfig`; the
reasoning is in ``docs/verdict.md``. Two questions are asked in order:

1. *Is there teacher text at all?* Only the corrected share and its interval answer this
   (plus a binomial test of the flagged count against the false-positive rate expected
   for the group): format alone is never evidence, so a source of human-written Q/A in
   instruction format with no teacher text is ``clean``.
2. *If so, what pattern?* Signals that describe how dumps of teacher outputs look (high
   density, prompt/response layout, templated prompts that cluster, whole documents rather
   than embedded passages, copies of reference outputs, self-identification markers,
   concentration in time and in few domains) are each compared with a threshold; the
   weighted share of signals that point to ``deliberate-style`` is the score.

"Deliberate-style" names a pattern in the data. It is not a finding of anyone's intent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
from scipy.stats import binomtest

DELIBERATE = "deliberate-style"
INCIDENTAL = "incidental"
CLEAN = "clean"
INCONCLUSIVE = "inconclusive"
SEVERITY = {DELIBERATE: 3, INCIDENTAL: 2, CLEAN: 1, INCONCLUSIVE: 0}

PATTERN_NOTE = (
    "'deliberate-style' describes a pattern in the data (dense, templated, whole-document teacher "
    "outputs); it is not a finding about anyone's intent."
)


PRESENCE_RULES = ("excess_test", "interval")


@dataclass
class VerdictConfig:
    """Thresholds of the verdict rules (see docs/verdict.md for the reasoning)."""

    min_documents: int = 30  # fewer documents: inconclusive
    contaminated_min_ci_low: float = 0.002  # the share's CI lower bound must exceed this ...
    enrichment_max_p: float = 0.01  # ... and the flagged count must beat the expected FPs
    excess_max_p: float = 0.01
    #: MinHash copies of reference outputs are evidence of their own (the excess test sees only
    #: the other documents): present when their count beats the expected false matches at
    #: ``excess_max_p``: this rate for plain pages (human pages: 0.074% of dev human texts,
    #: pipeline.estimate.MINHASH_FALSE_MATCH_RATE) ...
    copy_false_match_rate: float = 0.001
    #: ... and this one for prompt/response documents: other LLMs answering the references' own
    #: prompts match a reference 0.7% of the time (dev AlpacaEval answers in an instruction
    #: template, prompt excluded; 2.6% before), and at 0.1% a human Q/A source holding 60 of them
    #: among 360 pages was called incidental (2 of 20 runs with Claude and Qwen held out, session 8)
    structured_copy_false_match_rate: float = 0.01
    #: the excess test also counts flags at thresholds that this share of held-out human pages
    #: exceeds (with a baseline; 0: the decision thresholds only)
    excess_test_fpr: float = 0.01
    #: ... and its upper level: thresholds that this share of held-out human pages exceeds
    #: (0: the decision thresholds)
    excess_test_high_fpr: float = 0.002
    #: "excess_test": teacher text is present when the excess test rejects (see docs/verdict.md);
    #: "interval": when the interval's lower end and the binomial enrichment test both say so
    presence_rule: str = "excess_test"  # one of PRESENCE_RULES
    clean_max_ci_high: float = 0.02  # clean: no evidence and the share is at most this
    deliberate_min_share: float = 0.25
    structured_min_share: float = 0.5  # of flagged documents with a prompt/response layout
    template_min_cluster: int = 3  # cluster_size from which a document is "templated"
    template_min_share: float = 0.3
    whole_doc_min_fraction: float = 0.8  # teacher_fraction from which a document is "whole"
    whole_doc_min_share: float = 0.7
    copy_min_share: float = 0.2  # of flagged documents that copy a reference output
    self_id_min_share: float = 0.05
    time_window_days: int = 30
    time_min_excess: float = 0.3  # flagged share in the busiest window minus all docs' share there
    domain_top_share: float = 0.6  # share of flagged documents in the single busiest domain
    min_flagged_for_pattern: int = 5
    deliberate_min_score: float = 0.5
    weights: dict[str, float] = field(default_factory=lambda: {
        "teacher_share": 2.0, "structured_share": 2.0, "template_cluster_share": 1.0,
        "whole_document_share": 1.0, "reference_copy_share": 1.0, "self_id_marker_share": 0.5,
        "time_concentration": 0.5, "domain_concentration": 1.0,
    })

    def __post_init__(self) -> None:
        """Refuse a setting of the wrong type or range (one line naming it)."""
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "weights":
                if not isinstance(value, Mapping):
                    raise ValueError(f"verdict.weights must be a mapping of signal to weight, got {value!r}")
                for signal, weight in value.items():
                    if isinstance(weight, bool) or not isinstance(weight, (int, float)) \
                            or not math.isfinite(weight) or weight < 0:
                        raise ValueError(f"verdict.weights.{signal} must be a number >= 0, got {weight!r}")
            elif f.name == "presence_rule":
                if value not in PRESENCE_RULES:
                    raise ValueError(f"unknown presence_rule {value!r}; choose one of "
                                     f"{', '.join(PRESENCE_RULES)}")
            elif f.type in ("int", int):
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ValueError(f"verdict.{f.name} must be an integer >= 0, got {value!r}")
            elif isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                # every other threshold is a share, a rate or a p-value
                raise ValueError(f"verdict.{f.name} must be a number in [0, 1], got {value!r}")

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any] | VerdictConfig | None) -> VerdictConfig:
        if config is None:
            return cls()
        if isinstance(config, VerdictConfig):
            return config
        if not isinstance(config, Mapping):
            raise ValueError(f"verdict must be a mapping of settings, got {type(config).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"unknown verdict setting(s): {', '.join(unknown)}")
        base = cls()
        values = dict(config)
        if isinstance(values.get("weights"), Mapping):  # (anything else is refused by __post_init__)
            unknown = sorted(set(values["weights"]) - set(base.weights))
            if unknown:
                raise ValueError(f"unknown verdict weight(s): {', '.join(unknown)}; "
                                 f"known: {', '.join(base.weights)}")
            values["weights"] = {**base.weights, **values["weights"]}
        return cls(**{**asdict(base), **values})


@dataclass
class GroupRows:
    """Per-document columns of one group (a source, a domain or the corpus)."""

    flagged: np.ndarray  # bool: counted as teacher evidence (matched, whole or segment)
    matched: np.ndarray
    self_id: np.ndarray
    structured: np.ndarray
    cluster_size: np.ndarray  # int, 0 when unknown
    teacher_fraction: np.ndarray
    crawl_day: np.ndarray  # float days since epoch, NaN when unknown
    domain: np.ndarray
    # flagged at the estimation thresholds (the enrichment test's count); None: same as ``flagged``
    est_flagged: np.ndarray | None = None


def _ev(signal: str, value: float | None, threshold: float | None, points_to: str, note: str = "") -> dict:
    out = {"signal": signal, "value": None if value is None or not math.isfinite(value) else round(value, 6),
           "threshold": threshold, "points_to": points_to}
    if note:
        out["note"] = note
    return out


def judge(
    n: int,
    share: Mapping[str, Any],
    expected_flag_rate: float,
    rows: GroupRows,
    config: VerdictConfig,
    calibrated: bool,
    use_domains: bool = True,
    excess: tuple[float, ...] | None = None,
    llm_share: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The verdict of one group. ``share`` is the group's teacher share (ShareEstimate.to_json()),
    ``llm_share`` its any-LLM share (named in the reason when that text is what keeps the
    teacher's interval too wide to say ``clean``). ``excess`` is the excess test's
    ``(p, statistic[, detectable_share])`` (:class:`pipeline.estimate.ExcessTest`); with the third,
    ``clean`` and ``inconclusive`` verdicts say how large a share the test would likely have missed.

    ``expected_flag_rate`` is the share of documents the detectors flag in a clean group of
    the same make-up (its calibration); ``calibrated`` says whether that came from a baseline.
    """
    evidence: list[dict] = []
    if n < config.min_documents:
        evidence.append(_ev("documents", n, config.min_documents, INCONCLUSIVE))
        return {"label": INCONCLUSIVE, "score": 0.0, "evidence": evidence,
                "reason": f"only {n} documents (fewer than {config.min_documents}): too few to judge"}
    k = int((rows.flagged if rows.est_flagged is None else rows.est_flagged).sum())
    ci_low, ci_high = share.get("ci_low") or 0.0, share.get("ci_high")
    interval_known = ci_high is not None
    ci_high = 1.0 if ci_high is None else ci_high
    p0 = min(max(expected_flag_rate, 1e-6), 1 - 1e-6)
    pval = float(binomtest(k, n, p0, alternative="greater").pvalue) if n else 1.0
    enrichment = (k / n) / p0
    enriched = pval < config.enrichment_max_p
    # With a baseline the excess test decides: it carries the baseline's uncertainty, which the
    # binomial test against the point rate does not (that one called a clean crawl contaminated
    # when the shares were counted at the lower thresholds). Without one the test cannot run and
    # the interval's lower end (MinHash copies keep it above zero) with the enrichment test decide.
    tested = (config.presence_rule == "excess_test" and excess is not None
              and math.isfinite(excess[0]) and math.isfinite(excess[1]))
    excess_p = excess[0] if tested else math.nan
    detectable = float(excess[2]) if tested and len(excess) > 2 else math.nan
    n_copies = int(rows.matched.sum())
    n_structured = int(rows.structured.sum())
    copy_rate = ((n - n_structured) * config.copy_false_match_rate
                 + n_structured * config.structured_copy_false_match_rate) / n
    copies_p = float(binomtest(n_copies, n, copy_rate, alternative="greater").pvalue) if n_copies else 1.0
    copies_found = copies_p < config.excess_max_p
    if tested:
        # the excess test leaves the copies out (they are near-certain positives, not flags to
        # weigh against false positives): without this, a source of verbatim copies of teacher
        # outputs and nothing else came out inconclusive
        present = excess_p < config.excess_max_p or copies_found
    else:
        present = enriched and ci_low > config.contaminated_min_ci_low
    evidence.append(_ev("teacher_share_ci_low", ci_low, config.contaminated_min_ci_low,
                        INCIDENTAL if ci_low > config.contaminated_min_ci_low else CLEAN,
                        "lower end of the 95% interval of the corrected teacher share"))
    if excess is not None and math.isfinite(excess[1]):
        evidence.append(_ev("excess_test_p", excess[0], config.excess_max_p,
                            INCIDENTAL if excess[0] < config.excess_max_p else CLEAN,
                            f"one-sided test of the classifier flags (strict and lower thresholds) against"
                            f" the baseline's false positives, their uncertainty included (simulated); fitted"
                            f" excess share {excess[1]:.4f}"))
    if tested and n_copies:
        evidence.append(_ev("reference_copies_p", copies_p, config.excess_max_p,
                            INCIDENTAL if copies_found else CLEAN,
                            f"{n_copies} MinHash copies of reference outputs against a false-match rate of "
                            f"{copy_rate:.2g} ({config.copy_false_match_rate:g} for plain pages, "
                            f"{config.structured_copy_false_match_rate:g} for the {n_structured} "
                            f"prompt/response documents); binomial p={copies_p:.2g}"))
    evidence.append(_ev("flagged_enrichment", enrichment, None, INCIDENTAL if enriched else CLEAN,
                        f"flagged {k}/{n} vs {p0:.4f} expected without teacher text; binomial p={pval:.2g}"
                        f" (threshold p<{config.enrichment_max_p})"))
    if not present:
        if ci_high <= config.clean_max_ci_high:
            evidence.append(_ev("teacher_share_ci_high", ci_high, config.clean_max_ci_high, CLEAN))
            score = 1.0 - ci_high / config.clean_max_ci_high
            return {"label": CLEAN, "score": round(score, 4), "evidence": evidence,
                    "reason": "no teacher text beyond the expected false positives; the interval is narrow"
                    + _missed_note(detectable), **_limit(detectable)}
        evidence.append(_ev("teacher_share_ci_high", ci_high, config.clean_max_ci_high, INCONCLUSIVE))
        # say what kept the group from a finding, then why it is not clean either
        if tested and enriched:
            # flags above the point human rate, yet the test (the baseline's uncertainty and
            # other LLMs' text allowed for; the classifier tells the teacher from other LLMs
            # least well) does not find them: say that, not "no excess"
            found = (f"the flags exceed the expected false-positive rate (binomial p={pval:.2g}), but not "
                     "significantly once the baseline's own uncertainty and other LLMs' text, which the "
                     f"classifier may take for the teacher's, are allowed for (excess test p={excess_p:.2g})")
        elif tested:
            found = ("the flags do not clearly exceed the expected false positives "
                     f"(excess test p={excess_p:.2g})")
        elif enriched:
            found = (f"the flags exceed the expected rate (binomial p={pval:.2g}), but the share's interval "
                     f"starts at {ci_low:.1%}, not above {config.contaminated_min_ci_low:.1%}")
        else:
            found = f"the flags do not clearly exceed the expected false positives (binomial p={pval:.2g})"
        if interval_known:
            wide = (f"the share's 95% interval reaches {ci_high:.1%}, above the "
                    f"{config.clean_max_ci_high:.1%} bound for clean: too wide to call the group clean"
                    + (" (more pages, or a larger same-site baseline, narrow it)" if calibrated else ""))
        else:
            wide = "the share's interval could not be computed, so the group cannot be called clean"
        why = (f"{found}; {wide}"
               + ("" if calibrated
                  else " (no baseline: false-positive rates of this crawl's genres are unknown)"))
        # LLM text not counted as the teacher's: the interval allows it to be an unseen teacher
        # version's, which is what keeps it wide
        llm_estimate = (llm_share or {}).get("estimate")
        other_llm = (math.nan if llm_estimate is None else llm_estimate) - (share.get("estimate") or 0.0)
        if math.isfinite(other_llm) and other_llm > config.clean_max_ci_high:
            why += (f"; about {other_llm:.1%} of it looks like another LLM's text, which the classifier "
                    "cannot firmly attribute (a teacher version it never saw can look like another LLM)")
        return {"label": INCONCLUSIVE, "score": 0.0, "evidence": evidence,
                "reason": why + _missed_note(detectable), **_limit(detectable)}

    # ---- what pattern? ----------------------------------------------------------------
    est = float(share.get("estimate") or 0.0)
    votes: list[tuple[str, bool]] = []

    def vote(signal, value, threshold, deliberate, note=""):
        evidence.append(_ev(signal, value, threshold, DELIBERATE if deliberate else INCIDENTAL, note))
        votes.append((signal, deliberate))

    vote("teacher_share", est, config.deliberate_min_share, est >= config.deliberate_min_share,
         "corrected share of documents")
    if int(rows.flagged.sum()) >= config.min_flagged_for_pattern:
        f = rows.flagged
        structured = float(rows.structured[f].mean())
        vote("structured_share", structured, config.structured_min_share,
             structured >= config.structured_min_share, "flagged documents laid out as prompt/response")
        templ = float((rows.cluster_size[f] >= config.template_min_cluster).mean())
        vote("template_cluster_share", templ, config.template_min_share, templ >= config.template_min_share,
             f"flagged documents in near-duplicate clusters of >= {config.template_min_cluster}")
        whole = float((np.nan_to_num(rows.teacher_fraction[f]) >= config.whole_doc_min_fraction)
                      .__or__(rows.matched[f]).mean())
        vote("whole_document_share", whole, config.whole_doc_min_share, whole >= config.whole_doc_min_share,
             "flagged documents that are teacher text throughout (not a passage inside a page)")
        copies = float(rows.matched[f].mean())
        vote("reference_copy_share", copies, config.copy_min_share, copies >= config.copy_min_share,
             "flagged documents that copy a reference output (MinHash)")
        selfid = float(rows.self_id[f].mean())
        vote("self_id_marker_share", selfid, config.self_id_min_share, selfid >= config.self_id_min_share,
             "flagged documents with a self-identification marker")
        days = rows.crawl_day
        if np.isfinite(days).sum() >= config.min_flagged_for_pattern and np.isfinite(days[f]).any():
            excess = _time_excess(days, f, config.time_window_days)
            vote("time_concentration", excess, config.time_min_excess, excess >= config.time_min_excess,
                 f"flagged share in the busiest {config.time_window_days}-day window minus all documents'")
        if use_domains:
            doms, cnt = np.unique(rows.domain[f].astype(str), return_counts=True)
            top = float(cnt.max() / cnt.sum()) if cnt.size else 0.0
            vote("domain_concentration", top, config.domain_top_share, top >= config.domain_top_share,
                 f"flagged documents in the busiest of {doms.size} domains")
    weight = sum(config.weights.get(s, 1.0) for s, _ in votes)
    score = sum(config.weights.get(s, 1.0) for s, d in votes if d) / weight if weight else 0.0
    # Density is required, not just one vote: the other signals describe the *flagged* documents,
    # and where the excess is small most of those are false positives, whose layout is the
    # source's own (human Q/A in instruction format is structured, templated and on one site).
    dense = est >= config.deliberate_min_share
    if score >= config.deliberate_min_score and dense:
        return {"label": DELIBERATE, "score": round(score, 4), "evidence": evidence,
                "reason": "teacher text present in a dense, dump-like pattern. " + PATTERN_NOTE,
                **_limit(detectable)}
    reason = "teacher text present, scattered like ordinary web contamination"
    if score >= config.deliberate_min_score:
        reason = ("teacher text present; the flagged documents look dump-like, but the corrected share "
                  f"({est:.3f}) is below {config.deliberate_min_share}, so most of them may be the "
                  "source's own false positives: not called deliberate-style")
    if tested and ci_low <= config.contaminated_min_ci_low:
        reason += (f" (the excess over the baseline's false positives is significant, p={excess_p:.2g}; the"
                   " share's interval still reaches about zero because it also carries the spread of"
                   " plausible detection rates)")
    return {"label": INCIDENTAL, "score": round(1.0 - score, 4), "evidence": evidence, "reason": reason,
            **_limit(detectable)}


def _limit(detectable: float) -> dict[str, float]:
    """The verdict's ``detectable_share`` key, when the excess test computed it."""
    return {"detectable_share": round(detectable, 6)} if math.isfinite(detectable) else {}


def _missed_note(detectable: float) -> str:
    if not math.isfinite(detectable):
        return ""
    return (f"; with these documents and this baseline, a teacher share of about {detectable:.1%} would be "
            "detected only about half the time, and smaller shares mostly go unnoticed")


def _time_excess(days: np.ndarray, flagged: np.ndarray, window: int) -> float:
    ok = np.isfinite(days)
    fd = np.sort(days[flagged & ok])
    all_days = np.sort(days[ok])
    if fd.size == 0:
        return 0.0
    # the window that holds the most flagged documents
    right = np.searchsorted(fd, fd + window, side="right")
    best = int(np.argmax(right - np.arange(fd.size)))
    start, count = fd[best], right[best] - best
    in_all = np.searchsorted(all_days, start + window, side="right") - np.searchsorted(all_days, start)
    return float(count / fd.size - in_all / all_days.size)


def corpus_verdict(
    source_verdicts: Sequence[tuple[str, Mapping[str, Any]]], n_documents: int
) -> dict[str, Any]:
    """The most serious conclusive pattern any source shows, naming that source.

    ``source_verdicts`` holds (source name, verdict) pairs. ``inconclusive`` only when no
    source is conclusive (or there are no documents at all).
    """
    if n_documents == 0 or not source_verdicts:
        return {"label": INCONCLUSIVE, "score": 0.0, "source": None,
                "evidence": [_ev("documents", n_documents, 1, INCONCLUSIVE)],
                "reason": "the corpus has no documents" if n_documents == 0 else "no sources"}
    ranked = sorted(source_verdicts, key=lambda sv: (-SEVERITY[sv[1]["label"]], -sv[1]["score"], sv[0]))
    name, top = ranked[0]
    if top["label"] == INCONCLUSIVE:
        return {"label": INCONCLUSIVE, "score": 0.0, "source": None,
                "evidence": [{**e, "source": n} for n, v in source_verdicts for e in v["evidence"][:1]],
                "reason": "no source has enough evidence for a conclusion: "
                + "; ".join(f"{n}: {v.get('reason', '')}" for n, v in source_verdicts[:5])}
    same = [n for n, v in source_verdicts if v["label"] == top["label"]]
    evidence = [{**e, "source": name} for e in top["evidence"]]
    reason = f"source {name!r} is {top['label']}"
    if len(same) > 1:
        others = ", ".join(s for s in same if s != name)[:200]
        reason += f" (as are {len(same) - 1} other source(s): {others})"
    if top["label"] == DELIBERATE:
        reason += ". " + PATTERN_NOTE
    return {"label": top["label"], "score": top["score"], "source": name, "evidence": evidence,
            "reason": reason}
