"""report.json from real scores: keys, bad input (empty corpus, tiny source, mismatched detectors)."""

from __future__ import annotations

import json

import pytest

from bench.scenarios import write_corpus
from pipeline.detect import detect
from pipeline.report import REPORT_FILE, ReportError, build_report, summary_text
from tests.test_detect import _rows, small_corpus, small_index  # noqa: F401  (session fixtures)

TOP_KEYS = {"schema_version", "generated_at", "inputs", "corpus", "teacher_share", "llm_share", "verdict",
            "sources", "domains", "detectors"}
SHARE_KEYS = {"estimate", "ci_low", "ci_high", "method", "flagged_share", "by_characters"}


@pytest.fixture(scope="module")
def scored(tmp_path_factory, small_index, small_corpus):  # noqa: F811
    out = tmp_path_factory.mktemp("scored") / "scores"
    detect(small_corpus[0], out, index_dir=small_index[0])
    return out


def test_report_records_the_allowances_for_unseen_models_it_used(tmp_path, scored):
    default = build_report(scored, tmp_path / "r1", config={"n_boot": 100}, seed=1)["inputs"]["unseen_models"]
    assert default == {"other_llm_likeness": 0.9, "test_other_llm_likeness": 0.6,
                       "teacher_other_likeness": 0.9, "teacher_min_detectability": 0.6}
    narrow = {"teacher_other_likeness": 0.0, "teacher_min_detectability": 1.0}
    report = build_report(scored, tmp_path / "r2", config={"n_boot": 100, "unseen_models": narrow}, seed=1)
    assert report["inputs"]["unseen_models"] == {**default, **narrow}
    # ... and they reach the estimate: without the unseen-teacher branch the upper end is lower
    measured = build_report(scored, tmp_path / "r1", config={"n_boot": 100}, seed=1)
    assert report["teacher_share"]["ci_high"] < measured["teacher_share"]["ci_high"]
    assert report["teacher_share"]["estimate"] == measured["teacher_share"]["estimate"]
    # a report whose settings are not the measured ones says so
    assert any("not the measured defaults" in note for note in report["notes"])
    assert not any("not the measured defaults" in note for note in measured["notes"])


def test_report_has_the_issue_keys_and_a_readable_verdict(tmp_path, scored, small_corpus):  # noqa: F811
    report = build_report(scored, tmp_path / "report", config={"n_boot": 200}, seed=3)
    on_disk = json.loads((tmp_path / "report" / REPORT_FILE).read_text())
    assert on_disk["teacher_share"] == report["teacher_share"]
    assert set(report) >= TOP_KEYS and report["schema_version"] == "1"
    assert set(report["teacher_share"]) >= SHARE_KEYS
    assert {"estimate", "ci_low", "ci_high", "method", "flagged_share"} <= set(report["llm_share"])
    assert report["corpus"] == {"documents": len(small_corpus[1]), "sources": 2,
                                "characters": sum(r["n_chars"] for r in small_corpus[1])}
    by_source = {s["source"]: s for s in report["sources"]}
    assert set(by_source) == {"crawl", "qa-dump"}
    for s in report["sources"] + report["domains"]:
        assert {"documents", "teacher_share", "verdict"} <= set(s)
        for e in s["verdict"]["evidence"]:
            assert {"signal", "value", "threshold", "points_to"} <= set(e)
    # 40 of 100 qa-dump documents are verbatim reference outputs: near-certain positives
    dump = by_source["qa-dump"]["teacher_share"]
    assert 0.25 <= dump["ci_low"] <= 0.4 <= dump["ci_high"]
    assert by_source["crawl"]["verdict"]["label"] in ("clean", "inconclusive")
    assert report["verdict"]["label"] != "inconclusive" or all(
        s["verdict"]["label"] == "inconclusive" for s in report["sources"])
    assert report["detectors"]["index"]["format_version"] is not None
    text = summary_text(report)
    assert f"{len(small_corpus[1]):,} documents" in text and "verdict:" in text
    # same inputs and seed: same report (apart from its timestamp)
    again = build_report(scored, tmp_path / "report2", config={"n_boot": 200}, seed=3)
    assert {k: v for k, v in again.items() if k not in ("generated_at", "inputs")} == {
        k: v for k, v in report.items() if k not in ("generated_at", "inputs")}


def test_empty_corpus_reports_zero_documents_and_inconclusive(tmp_path, small_index):  # noqa: F811
    corpus = write_corpus([], tmp_path / "corpus")
    detect(corpus, tmp_path / "scores", index_dir=small_index[0])
    report = build_report(tmp_path / "scores", tmp_path / "report")
    assert report["corpus"]["documents"] == 0
    assert report["verdict"]["label"] == "inconclusive"
    assert report["sources"] == [] and set(report) >= TOP_KEYS
    assert "0 documents" in summary_text(report)


def test_a_source_with_three_documents_is_inconclusive_with_the_reason(tmp_path, small_index, dev_human):  # noqa: F811
    rows = _rows(dev_human[:3], "tiny", "t")
    corpus = write_corpus(rows, tmp_path / "corpus")
    detect(corpus, tmp_path / "scores", index_dir=small_index[0])
    report = build_report(tmp_path / "scores", tmp_path / "report")
    (tiny,) = report["sources"]
    assert tiny["documents"] == 3
    assert tiny["verdict"]["label"] == "inconclusive"
    assert "only 3 documents" in tiny["verdict"]["reason"]
    assert report["verdict"]["label"] == "inconclusive"


def test_baseline_scored_with_another_index_is_refused(tmp_path, scored, small_corpus, dev_openai):  # noqa: F811
    from detectors.minhash import ReferenceIndex

    other = tmp_path / "other-index"
    ReferenceIndex().fit([r["text"] for r in dev_openai[:50]], [r["id"] for r in dev_openai[:50]]).save(other)
    detect(small_corpus[0], tmp_path / "base", index_dir=other)
    with pytest.raises(ReportError, match="different MinHash index"):
        build_report(scored, tmp_path / "report", baseline_scores_dir=tmp_path / "base")
    with pytest.raises(ReportError, match="unknown estimation method"):
        build_report(scored, tmp_path / "report", config={"method": "guess"})
    with pytest.raises(ReportError, match="unknown report setting.*nboot"):
        build_report(scored, tmp_path / "report", config={"nboot": 10})
    with pytest.raises(ReportError, match="unknown unseen_models setting.*teacher_likeness"):
        build_report(scored, tmp_path / "report", config={"unseen_models": {"teacher_likeness": 0.5}})
    with pytest.raises(ReportError, match=r"other_llm_likeness must lie in \[0.0, 1\]"):
        build_report(scored, tmp_path / "report", config={"unseen_models": {"other_llm_likeness": 1.5}})


def test_a_method_that_cannot_be_computed_is_named_in_the_notes(tmp_path, scored):
    """Without a placement calibration 'pacc' has no score means to work with: the shares fall
    back to 'acc', and the report says so instead of recording 'pacc' silently."""
    report = build_report(scored, tmp_path / "r", config={"n_boot": 100, "method": "pacc"}, seed=1)
    assert report["inputs"]["method"] == "pacc" and report["teacher_share"]["method"] == "acc"
    assert any("Method 'pacc' was asked for but could not be computed" in note for note in report["notes"])
    plain = build_report(scored, tmp_path / "r2", config={"n_boot": 100}, seed=1)
    assert not any("could not be computed" in note for note in plain["notes"])
