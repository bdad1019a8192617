"""Verdict rules: each label reachable for the documented reasons, corpus verdict precedence."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.verdict import (
    CLEAN,
    DELIBERATE,
    INCIDENTAL,
    INCONCLUSIVE,
    GroupRows,
    VerdictConfig,
    corpus_verdict,
    judge,
)


def rows(n, flagged_idx, structured=False, cluster=1, fraction=0.3, domains=50, burst=False, self_id=False):
    flagged = np.zeros(n, dtype=bool)
    flagged[flagged_idx] = True
    days = np.linspace(19000, 19180, n)
    if burst:
        days[flagged] = 19100 + np.arange(flagged.sum()) % 10
    return GroupRows(
        flagged=flagged, matched=np.zeros(n, dtype=bool), self_id=flagged & self_id,
        structured=np.full(n, structured), cluster_size=np.full(n, cluster, dtype=float),
        teacher_fraction=np.where(flagged, fraction, 0.0), crawl_day=days,
        domain=np.array([f"site{i % domains}.example" for i in range(n)], dtype=object),
    )


def share(est, lo, hi):
    return {"estimate": est, "ci_low": lo, "ci_high": hi}


CFG = VerdictConfig()


def test_three_documents_are_inconclusive_with_the_reason():
    v = judge(3, share(0.6, 0.1, 0.9), 0.02, rows(3, [0, 1]), CFG, calibrated=True)
    assert v["label"] == INCONCLUSIVE
    assert "only 3 documents" in v["reason"]
    assert v["evidence"][0]["signal"] == "documents"


def test_no_excess_over_expected_false_positives_is_clean_even_in_instruction_format():
    n = 1000
    v = judge(n, share(0.0, 0.0, 0.01), 0.03, rows(n, np.arange(30), structured=True, cluster=5,
                                                    fraction=1.0), CFG, calibrated=True)
    assert v["label"] == CLEAN
    assert all(e["points_to"] == CLEAN for e in v["evidence"])


def test_wide_interval_without_evidence_is_inconclusive_and_says_why():
    v = judge(1000, share(0.02, 0.0, 0.3), 0.01, rows(1000, np.arange(40)), CFG, calibrated=False)
    assert v["label"] == INCONCLUSIVE
    assert "no baseline" in v["reason"]
    # the reason quotes how far the interval reaches against the clean bound
    assert "interval reaches 30.0%, above the 2.0% bound" in v["reason"]
    # flags well above the expected rate, but no baseline and an interval from zero: the reason
    # says the flags exceed, and that the interval's lower end is what keeps it open
    enriched = judge(1000, share(0.03, 0.0, 0.2), 0.01, rows(1000, np.arange(60)), CFG, calibrated=False)
    assert enriched["label"] == INCONCLUSIVE
    assert "the flags exceed the expected rate" in enriched["reason"]
    assert "interval starts at 0.0%" in enriched["reason"] and "do not clearly" not in enriched["reason"]
    # an interval that could not be computed is not quoted as reaching 100%
    unknown = judge(1000, share(None, None, None), 0.01, rows(1000, np.arange(10)), CFG, calibrated=True)
    assert unknown["label"] == INCONCLUSIVE
    assert "could not be computed" in unknown["reason"] and "100.0%" not in unknown["reason"]
    calibrated = judge(1000, share(0.0, 0.0, 0.035), 0.01, rows(1000, np.arange(10)), CFG, calibrated=True)
    assert calibrated["label"] == INCONCLUSIVE
    assert "reaches 3.5%" in calibrated["reason"] and "larger same-site baseline" in calibrated["reason"]


def test_llm_text_of_unknown_origin_is_named_when_it_keeps_a_group_from_clean():
    # no teacher flags beyond the false positives, but 8% of the group looks like another LLM's
    # text: the teacher's interval reaches up to it, and the reason says why
    v = judge(1000, share(0.0, 0.0, 0.09), 0.02, rows(1000, np.arange(20)), CFG, calibrated=True,
              llm_share=share(0.08, 0.05, 0.11))
    assert v["label"] == INCONCLUSIVE
    assert "8.0% of it looks like another LLM's text" in v["reason"]
    # little LLM text beyond the teacher's own: the reason does not blame it
    for teacher, llm in ((share(0.0, 0.0, 0.09), share(0.01, 0.0, 0.03)),
                         (share(0.05, 0.0, 0.4), share(0.06, 0.0, 0.4))):
        v = judge(1000, teacher, 0.02, rows(1000, np.arange(20)), CFG, calibrated=True, llm_share=llm)
        assert v["label"] == INCONCLUSIVE and "LLM" not in v["reason"]


def test_scattered_embedded_contamination_is_incidental():
    n = 2000
    v = judge(n, share(0.04, 0.025, 0.055), 0.01, rows(n, np.arange(0, n, 20), fraction=0.3), CFG, True)
    assert v["label"] == INCIDENTAL
    signals = {e["signal"]: e for e in v["evidence"]}
    assert signals["flagged_enrichment"]["points_to"] == INCIDENTAL
    assert signals["structured_share"]["points_to"] == INCIDENTAL
    assert 0.0 <= v["score"] <= 1.0


def test_dense_templated_whole_document_dump_is_deliberate_style():
    n = 400
    v = judge(n, share(0.6, 0.5, 0.7), 0.02, rows(n, np.arange(0, 240), structured=True, cluster=12,
                                                  fraction=1.0, domains=1, burst=True), CFG, True)
    assert v["label"] == DELIBERATE
    assert "not a finding about anyone's intent" in v["reason"]
    assert v["score"] >= CFG.deliberate_min_score
    for e in v["evidence"]:
        assert set(e) >= {"signal", "value", "threshold", "points_to"}


def test_dump_like_false_positives_of_a_low_share_source_are_not_deliberate_style():
    """A human Q/A source in instruction format whose excess test rejects by chance: its flagged
    documents are structured, templated, whole and on one site, like a dump's, but the corrected
    share is small, so the pattern is not called deliberate-style."""
    n = 360
    r = rows(n, np.arange(0, 18), structured=True, cluster=40, fraction=1.0, domains=1)
    v = judge(n, share(0.03, 0.0, 0.08), 0.03, r, CFG, True, excess=(0.008, 0.03))
    assert v["label"] == INCIDENTAL
    assert "below 0.25" in v["reason"] and "false positives" in v["reason"]
    votes = {e["signal"]: e["points_to"] for e in v["evidence"]}
    assert votes["structured_share"] == DELIBERATE and votes["teacher_share"] == INCIDENTAL


def test_config_changes_the_rules_and_rejects_unknown_settings():
    n = 2000
    r = rows(n, np.arange(0, n, 20), fraction=0.3)
    strict = VerdictConfig.from_mapping({"deliberate_min_score": 0.0})
    assert judge(n, share(0.04, 0.025, 0.055), 0.01, r, strict, True)["label"] == INCIDENTAL  # not dense
    strict = VerdictConfig.from_mapping({"deliberate_min_score": 0.0, "deliberate_min_share": 0.03})
    assert judge(n, share(0.04, 0.025, 0.055), 0.01, r, strict, True)["label"] == DELIBERATE
    with pytest.raises(ValueError, match="unknown verdict setting"):
        VerdictConfig.from_mapping({"no_such_rule": 1})
    with pytest.raises(ValueError, match="unknown presence_rule 'excess-test'"):
        VerdictConfig.from_mapping({"presence_rule": "excess-test"})  # a typo is not the other rule
    assert VerdictConfig.from_mapping({"presence_rule": "interval"}).presence_rule == "interval"


def test_corpus_verdict_is_the_most_serious_conclusive_source_and_names_it():
    clean = {"label": CLEAN, "score": 0.9, "evidence": [{"signal": "x", "value": 0, "threshold": 0,
                                                           "points_to": CLEAN}]}
    dump = {"label": DELIBERATE, "score": 0.8, "evidence": [{"signal": "teacher_share", "value": 0.6,
                                                               "threshold": 0.25, "points_to": DELIBERATE}]}
    few = {"signal": "documents", "value": 3, "threshold": 30, "points_to": INCONCLUSIVE}
    unsure = {"label": INCONCLUSIVE, "score": 0.0, "evidence": [few], "reason": "only 3 documents"}
    v = corpus_verdict([("crawl", clean), ("qa-dump", dump), ("tiny", unsure)], 1000)
    assert v["label"] == DELIBERATE and v["source"] == "qa-dump"
    assert all(e["source"] == "qa-dump" for e in v["evidence"])
    assert corpus_verdict([("crawl", clean), ("tiny", unsure)], 1000)["label"] == CLEAN
    assert corpus_verdict([("tiny", unsure)], 3)["label"] == INCONCLUSIVE
    empty = corpus_verdict([], 0)
    assert empty["label"] == INCONCLUSIVE and "no documents" in empty["reason"]


def test_excess_test_calls_scattered_text_the_interval_alone_leaves_open():
    # an interval that touches zero, a flagged count the binomial rule cannot separate from
    # the expected false positives, but a rejecting excess test (baseline uncertainty included)
    n = 2000
    r = rows(n, np.arange(0, n, 400), fraction=0.3)  # 5 flagged, 4 expected
    weak = share(0.02, 0.0, 0.045)
    v = judge(n, weak, 0.002, r, CFG, True, excess=(0.003, 0.02))
    assert v["label"] == INCIDENTAL
    ev = {e["signal"]: e for e in v["evidence"]}
    assert ev["excess_test_p"]["points_to"] == INCIDENTAL and ev["excess_test_p"]["threshold"] == 0.01
    assert "p=0.003" in v["reason"] and "interval still reaches about zero" in v["reason"]
    # the same data without a rejecting test stay open: too wide to say clean
    not_rejected = judge(n, weak, 0.002, r, CFG, True, excess=(0.2, 0.005))
    assert not_rejected["label"] == INCONCLUSIVE
    assert "do not clearly exceed the expected false positives (excess test p=0.2)" in not_rejected["reason"]
    interval_only = VerdictConfig.from_mapping({"presence_rule": "interval"})
    assert judge(n, weak, 0.002, r, interval_only, True, excess=(0.003, 0.02))["label"] == INCONCLUSIVE


def test_clean_and_inconclusive_verdicts_say_how_large_a_share_could_have_been_missed():
    n = 1000
    quiet = rows(n, np.arange(10))
    clean = judge(n, share(0.0, 0.0, 0.01), 0.01, quiet, CFG, calibrated=True, excess=(0.6, 0.0, 0.027))
    assert clean["label"] == CLEAN and clean["detectable_share"] == 0.027
    assert "about 2.7% would be detected only about half the time" in clean["reason"]
    wide = judge(n, share(0.0, 0.0, 0.05), 0.01, quiet, CFG, calibrated=True, excess=(0.6, 0.0, 0.041))
    assert wide["label"] == INCONCLUSIVE and "about 4.1% would be detected" in wide["reason"]
    # without the test (no baseline) there is no such figure, and none is made up
    untested = judge(n, share(0.0, 0.0, 0.01), 0.01, quiet, CFG, calibrated=False)
    assert "detectable_share" not in untested and "half the time" not in untested["reason"]
    # a group where the test found teacher text keeps the figure, without the sentence
    found = judge(n, share(0.04, 0.01, 0.08), 0.01, rows(n, np.arange(60)), CFG, calibrated=True,
                  excess=(0.001, 0.04, 0.02))
    assert found["label"] == INCIDENTAL and found["detectable_share"] == 0.02
    assert "half the time" not in found["reason"]


def test_flags_above_the_false_positives_that_the_excess_test_cannot_attribute_are_not_called_no_excess():
    # 40 of 120 flagged against 0.4% expected, but the excess test (other LLMs' text allowed for)
    # does not reject: the reason must not say the flags do not exceed the false positives
    v = judge(120, share(0.35, 0.26, 0.6), 0.004, rows(120, np.arange(40)), CFG, calibrated=True,
              excess=(0.13, 0.14, 0.3))
    assert v["label"] == INCONCLUSIVE
    assert "do not clearly exceed" not in v["reason"]
    assert "other LLMs' text" in v["reason"] and "excess test p=0.13" in v["reason"]


def test_copies_of_reference_outputs_are_evidence_even_when_the_excess_test_sees_none():
    """The excess test leaves MinHash copies out; a source whose teacher text is verbatim copies
    (and whose other pages are clean) is still found with a baseline."""
    n = 2600
    copies = rows(n, np.arange(600), fraction=1.0)
    copies.matched[:600] = True
    v = judge(n, share(0.233, 0.214, 0.253), 0.004, copies, CFG, calibrated=True, excess=(0.3, 0.0, 0.015))
    assert v["label"] in (INCIDENTAL, DELIBERATE)
    ev = {e["signal"]: e for e in v["evidence"]}
    assert ev["reference_copies_p"]["points_to"] == INCIDENTAL
    # one false match in 2,000 pages is no evidence
    one = rows(2000, [5])
    one.matched[5] = True
    quiet = judge(2000, share(0.0, 0.0, 0.01), 0.004, one, CFG, calibrated=True, excess=(0.6, 0.0, 0.015))
    assert quiet["label"] == CLEAN
    assert {e["signal"]: e for e in quiet["evidence"]}["reference_copies_p"]["points_to"] == CLEAN
    # 4 matches among 360 instruction-format pages, 60 of them other LLMs' answers to the
    # references' own prompts (which match 0.7% of the time): no evidence either (at the plain
    # pages' 0.1%, p = 0.0005 called such a human source incidental); the same 4 among plain
    # pages are
    plain = rows(360, [1, 2, 3, 4])
    plain.matched[[1, 2, 3, 4]] = True
    found = judge(360, share(0.011, 0.0, 0.18), 0.004, plain, CFG, calibrated=True, excess=(0.3, 0.0, 0.05))
    assert {e["signal"]: e for e in found["evidence"]}["reference_copies_p"]["points_to"] == INCIDENTAL
    qa = rows(360, [1, 2, 3, 4], structured=True)
    qa.matched[[1, 2, 3, 4]] = True
    held = judge(360, share(0.011, 0.0, 0.18), 0.004, qa, CFG, calibrated=True, excess=(0.3, 0.0, 0.05))
    assert {e["signal"]: e for e in held["evidence"]}["reference_copies_p"]["points_to"] == CLEAN
    assert held["label"] not in (INCIDENTAL, DELIBERATE)
