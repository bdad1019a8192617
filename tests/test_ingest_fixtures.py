"""Ingest of every real WARC fixture in ../shared/data/fixtures (skipped when absent)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest
from fastwarc.warc import ArchiveIterator

from pipeline.ingest import ingest, read_corpus
from tests.test_ingest import assert_accounting


def independent_counts(path: Path) -> tuple[int, Counter]:
    """HTML 2xx responses (documents to expect) and other records by kind, read with fastwarc directly."""
    documents, skipped = 0, Counter()
    for record in ArchiveIterator(str(path), parse_http=True, quirks_mode=True):
        kind = str(record.record_type)
        if kind == "response" and record.is_http and 200 <= (record.http_headers.status_code or 0) < 300 \
                and (record.http_content_type or "text/html") in ("text/html", "application/xhtml+xml"):
            documents += 1
        else:
            skipped[kind] += 1
    return documents, skipped


@pytest.fixture(scope="module")
def fixture_corpus(warc_fixtures, tmp_path_factory) -> tuple[Path, dict, pa.Table]:
    assert warc_fixtures, "no WARC fixtures found"
    out = tmp_path_factory.mktemp("warc") / "corpus"
    manifest = ingest(warc_fixtures, out)
    return out, manifest, pa.Table.from_batches(list(read_corpus(out)))


def test_accounting_holds_for_every_fixture(warc_fixtures, fixture_corpus):
    _, manifest, _ = fixture_corpus
    assert_accounting(manifest)
    by_path = {entry["path"]: entry for entry in manifest["inputs"]}
    assert set(by_path) == {str(p) for p in warc_fixtures}
    total_skipped: Counter = Counter()
    for path in warc_fixtures:
        entry = by_path[str(path)]
        expected_docs, skipped = independent_counts(path)
        assert entry["records_read"] == expected_docs
        assert entry["rejected"] == 0, entry["rejected_by_reason"]
        assert entry["warc_records_skipped"] == dict(skipped)
        assert entry["format"] == "warc" and entry["size"] == path.stat().st_size
        total_skipped.update(skipped)
    assert manifest["counts"]["warc_records_skipped"] == dict(total_skipped)


def test_html_responses_give_text(fixture_corpus):
    _, manifest, table = fixture_corpus
    rows = table.to_pylist()
    assert len(rows) == manifest["counts"]["written"] > 0
    for row in rows:
        assert row["n_chars"] == len(row["text"]) > 0
        assert row["url"].startswith("http") and row["domain"]
        assert "<html" not in row["text"].lower() and "<div" not in row["text"].lower()
        assert row["text"].count("\ufffd") <= 0.01 * len(row["text"])


def test_charsets_are_decoded(fixture_corpus):
    """ClueWeb pages are EUC-JP, some Common Crawl pages GB2312 / windows-1251: no mojibake."""
    _, _, table = fixture_corpus
    rows = table.to_pylist()
    japanese = [r for r in rows if r["source"] == "clueweb-quirk"]
    assert japanese
    for row in japanese:
        assert any("\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff" for ch in row["text"]), row["url"]
    cyrillic = [r for r in rows if sum("\u0400" <= ch <= "\u04ff" for ch in r["text"]) > 50]
    assert cyrillic  # the windows-1251 page of warcfile.warc.gz


def test_malformed_warc_dates_become_null_and_are_counted(fixture_corpus):
    _, manifest, table = fixture_corpus
    rows = table.to_pylist()
    clueweb = next(e for e in manifest["inputs"] if e["path"].endswith("clueweb-quirk.warc.gz"))
    assert clueweb["invalid_dates"] == clueweb["records_read"] > 0
    assert all(r["crawl_date"] is None for r in rows if r["source"] == "clueweb-quirk")
    others = [r for r in rows if r["source"] != "clueweb-quirk"]
    assert others and all(r["crawl_date"] is not None for r in others)
    assert manifest["counts"]["invalid_dates"] == clueweb["invalid_dates"]
