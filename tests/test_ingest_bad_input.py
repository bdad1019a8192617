"""Every bad-input case of the ingest issue: a per-record rejection with a reason, or a one-line error.

Each case checks the accounting identity and that the rejection lands in rejected/ with its
reason, input path, position and an excerpt where there is one.
"""

from __future__ import annotations

import csv
import datetime
import gzip
import json
import os
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.ingest import IngestOptions, ingest, read_corpus
from pipeline.normalize import normalize_text
from pipeline.readers import InputError
from tests.test_ingest import assert_accounting
from tests.test_readers import sample, write_jsonl


@pytest.fixture(scope="module")
def texts(dev_openai, dev_human) -> list[str]:
    return [r["text"] for r in sample(dev_openai, 20) + sample(dev_human, 20)]


def run(inputs, out: Path, **options) -> tuple[dict, list[dict], list[str]]:
    manifest = ingest(inputs, out, IngestOptions(**options))
    assert_accounting(manifest)
    rejected = pq.read_table(out / "rejected").to_pylist()
    assert len(rejected) == manifest["counts"]["rejected"]
    written = [t for b in read_corpus(out, columns=["text"]) for t in b.column("text").to_pylist()]
    assert len(written) == manifest["counts"]["written"]
    return manifest, rejected, written


def jsonl_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def dumps(record: dict) -> bytes:
    return json.dumps(record, ensure_ascii=False).encode()


def test_malformed_json_line(tmp_path, texts):
    lines = [dumps({"text": t}) for t in texts[:5]]
    lines.insert(2, b'{"text": "cut off')
    lines.insert(4, b"[1, 2, 3]")
    path = jsonl_lines(tmp_path / "in.jsonl", lines)
    manifest, rejected, written = run([path], tmp_path / "out")
    assert manifest["counts"]["rejected_by_reason"] == {"malformed_json": 1, "not_an_object": 1}
    assert [(r["reason"], r["position"]) for r in rejected] == [("malformed_json", 3), ("not_an_object", 5)]
    assert rejected[0]["input_path"] == str(path) and rejected[0]["excerpt"].startswith('{"text": "cut off')
    assert rejected[0]["detail"].startswith("not valid JSON: ")
    assert len(written) == 5


def test_lone_surrogate_is_named_not_called_malformed(tmp_path, texts):
    """A lone UTF-16 surrogate escape is valid JSON syntax but not Unicode text: the rejection says
    so and names the field (it used to be malformed_json, "not a JSON object")."""
    lines = [dumps({"text": t}) for t in texts[:3]]
    lines.insert(1, b'{"text": "\\ud800"}')
    lines.insert(2, b'{"text": "fine text", "source": "a\\udc00b"}')
    lines.insert(3, b'{"text": "paired \\ud83d\\ude00 is a real emoji"}')
    manifest, rejected, written = run([jsonl_lines(tmp_path / "in.jsonl", lines)], tmp_path / "out")
    expected = [("invalid_text_field", 2), ("malformed_json", 3)]
    assert [(r["reason"], r["position"]) for r in rejected] == expected
    assert "field 'text' has a lone surrogate (\\ud800" in rejected[0]["detail"]
    assert "field 'source' has a lone surrogate (\\udc00" in rejected[1]["detail"]
    assert all("not a JSON object" not in r["detail"] for r in rejected)
    assert "paired \U0001f600 is a real emoji" in written and manifest["counts"]["written"] == 4


def test_missing_text_field(tmp_path, texts):
    lines = [dumps({"text": t}) for t in texts[:3]] + [dumps({"body": texts[3]}), dumps({"text": None})]
    manifest, rejected, _ = run([jsonl_lines(tmp_path / "in.jsonl", lines)], tmp_path / "out")
    expected = [("missing_text_field", 4), ("missing_text_field", 5)]
    assert [(r["reason"], r["position"]) for r in rejected] == expected
    assert "body" in rejected[0]["detail"]
    assert manifest["counts"]["written"] == 3


def test_empty_and_whitespace_text(tmp_path, texts):
    values = [texts[0], "", " \n\t\u3000 ", 7]
    lines = [dumps({"text": v}) for v in values]
    manifest, rejected, _ = run([jsonl_lines(tmp_path / "in.jsonl", lines)], tmp_path / "out")
    assert [r["reason"] for r in rejected] == ["empty_text", "empty_text", "invalid_text_field"]
    assert manifest["counts"]["written"] == 1


def test_text_over_max_chars(tmp_path, texts):
    lengths = sorted(len(t) for t in texts)
    limit = lengths[len(lengths) // 2]
    path = write_jsonl(tmp_path / "in.jsonl", [{"text": t} for t in texts])
    manifest, rejected, written = run([path], tmp_path / "out", max_chars=limit)
    assert all(len(t) <= limit for t in written)
    assert {r["reason"] for r in rejected} == {"too_long"}
    expected = sum(len(normalize_text(t)) > limit for t in texts)
    assert expected > 0 and manifest["counts"]["rejected_by_reason"] == {"too_long": expected}
    assert all(int(r["detail"].split()[0]) > limit for r in rejected)


def test_invalid_utf8_is_kept_and_counted(tmp_path, texts):
    good = [dumps({"text": t}) for t in texts[:3]]
    bad = b'{"text": "caf\xe9 au lait \xff\xfe is not UTF-8 but still a document"}'
    manifest, rejected, written = run([jsonl_lines(tmp_path / "in.jsonl", [*good, bad])], tmp_path / "out")
    assert not rejected and manifest["counts"]["invalid_utf8"] == 1
    assert any("\ufffd" in t and "au lait" in t for t in written)


def test_truncated_gzip_keeps_records_before_the_cut(tmp_path, texts):
    data = gzip.compress(b"".join(dumps({"text": t}) + b"\n" for t in texts))
    cut = data[: len(data) // 2]
    path = tmp_path / "in.jsonl.gz"
    path.write_bytes(cut)
    complete_lines = zlib.decompressobj(31).decompress(cut).count(b"\n")
    assert 0 < complete_lines < len(texts)
    manifest, rejected, written = run([path], tmp_path / "out")
    assert [(r["reason"], r["position"]) for r in rejected] == [("truncated_input", complete_lines + 1)]
    assert manifest["counts"]["written"] == complete_lines


def _gzip_members(data: bytes) -> list[bytes]:
    members, offset = [], 0
    while offset < len(data):
        inflate = zlib.decompressobj(31)
        inflate.decompress(data[offset:])
        end = len(data) - len(inflate.unused_data)
        members.append(data[offset:end])
        offset = end
    return members


def test_warc_with_corrupt_record_in_the_middle(tmp_path, warc_fixtures):
    source = next(p for p in warc_fixtures if p.name == "warcfile.warc.gz")
    clean_manifest, _, clean_written = run([source], tmp_path / "clean")
    members = _gzip_members(source.read_bytes())
    responses = [i for i, m in enumerate(members) if b"WARC-Type: response" in zlib.decompress(m, 31)[:2000]]
    victim = responses[len(responses) // 2]
    broken = bytearray(members[victim])
    for k in range(30, min(len(broken) - 8, 90)):
        broken[k] ^= 0xA5
    path = tmp_path / "broken.warc.gz"
    path.write_bytes(b"".join(members[:victim]) + bytes(broken) + b"".join(members[victim + 1 :]))
    manifest, rejected, written = run([path], tmp_path / "out")
    assert [(r["reason"], r["position"]) for r in rejected] == [("corrupt_record", victim)]  # record number
    assert manifest["counts"]["records_read"] == clean_manifest["counts"]["records_read"]
    assert manifest["counts"]["written"] == clean_manifest["counts"]["written"] - 1
    # Records before and after the broken one are all there.
    assert set(written) < set(clean_written)
    assert written[0] == clean_written[0] and written[-1] == clean_written[-1]


def test_truncated_warc(tmp_path, warc_fixtures):
    source = next(p for p in warc_fixtures if p.name == "warcfile.warc.gz")
    data = source.read_bytes()
    path = tmp_path / "cut.warc.gz"
    path.write_bytes(data[: int(len(data) * 0.6)])
    manifest, rejected, written = run([path], tmp_path / "out")
    assert [r["reason"] for r in rejected] == ["truncated_input"]
    assert len(written) > 0


def test_binary_garbage_named_jsonl(tmp_path, texts):
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_bytes(bytes((i * 7919 + 13) % 256 for i in range(20_000)))
    good = write_jsonl(tmp_path / "good.jsonl", [{"text": t} for t in texts[:4]])
    manifest, rejected, _ = run([garbage, good], tmp_path / "out")
    assert [(r["reason"], r["position"], r["input_path"]) for r in rejected] == [
        ("binary_content", 0, str(garbage))
    ]
    assert manifest["counts"]["written"] == 4


def test_folder_with_unreadable_and_non_text_files(tmp_path, texts):
    folder = tmp_path / "crawl"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", [{"text": t} for t in texts[:5]])
    (folder / "b.txt").write_text(texts[5], encoding="utf-8")
    (folder / "c.jsonl").symlink_to(tmp_path / "vanished.jsonl")  # unreadable even for root
    (folder / "d.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    locked = folder / "e.jsonl"
    write_jsonl(locked, [{"text": texts[6]}])
    locked.chmod(0)
    try:
        manifest, rejected, _ = run([folder], tmp_path / "out")
    finally:
        locked.chmod(0o644)
    reasons = {Path(r["input_path"]).name: r["reason"] for r in rejected}
    assert reasons["c.jsonl"] == "unreadable_file" and reasons["d.png"] == "not_text"
    if os.geteuid() != 0:  # root reads mode-000 files anyway
        assert reasons["e.jsonl"] == "unreadable_file"
    assert manifest["counts"]["written"] == 6 + (os.geteuid() == 0)


def test_corrupt_parquet_and_malformed_csv_rows(tmp_path, texts):
    broken = tmp_path / "broken.parquet"
    pq.write_table(pa.table({"text": texts[:5]}), broken)
    broken.write_bytes(broken.read_bytes()[:-40] + b"\x00" * 40)
    csv_path = tmp_path / "rows.csv"
    rows = 'text,url\n"one, fine",http://a.example.com/\n"two",x,extra\n"three",\n'
    csv_path.write_text(rows, encoding="utf-8")
    manifest, rejected, _ = run([broken, csv_path], tmp_path / "out")
    assert [(r["reason"], Path(r["input_path"]).name) for r in rejected] == [
        ("corrupt_record", "broken.parquet"), ("malformed_csv", "rows.csv")
    ]
    assert manifest["counts"]["written"] == 2


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp / "does-not-exist.jsonl", "input not found"),
        (lambda tmp: _write(tmp / "blob.bin", bytes(range(256)) * 8), "unknown format"),
    ],
)
def test_one_line_errors(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(InputError, match=message) as info:
        ingest([path], tmp_path / "out")
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    assert not (tmp_path / "out").exists()


def crawl_dates(corpus: Path) -> list:
    batches = read_corpus(corpus, columns=["crawl_date"])
    return [d for b in batches for d in b.column("crawl_date").to_pylist()]


@pytest.mark.parametrize(
    "dtype",
    [pa.date32(), pa.date64(), pa.timestamp("s"), pa.timestamp("ns", tz="Asia/Karachi"),
     pa.timestamp("us", "UTC")],
    ids=str,
)
def test_parquet_date_and_timestamp_columns(tmp_path, texts, dtype):
    day = datetime.date(2023, 5, 1)
    values = pa.array([day, None], pa.date32()).cast(dtype)
    path = tmp_path / "dated.parquet"
    pq.write_table(pa.table({"text": texts[:2], "crawl_date": values}), path)
    manifest, rejected, _ = run([path], tmp_path / "out")
    assert not rejected and manifest["counts"]["invalid_dates"] == 0
    dates = crawl_dates(tmp_path / "out")
    midnight = datetime.datetime(2023, 5, 1, tzinfo=datetime.UTC)
    assert sorted(dates, key=str) == [midnight, None]  # a null date is no date, not an invalid one


def test_crawl_export_dates_in_csv(tmp_path, texts):
    rows = ["1682942400", "1682942400000", "Mon, 01 May 2023 12:00:00 GMT", "2023-05-01T12:00:00Z",
            "not a date", "01/05/2023"]
    path = tmp_path / "dates.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "crawl_date"])
        writer.writerows(zip(texts, rows, strict=False))
    manifest, rejected, _ = run([path], tmp_path / "out")
    assert not rejected and manifest["counts"]["invalid_dates"] == 2
    dates = crawl_dates(tmp_path / "out")
    noon = datetime.datetime(2023, 5, 1, 12, tzinfo=datetime.UTC)
    assert sorted(dates, key=str) == [noon] * 4 + [None] * 2


def test_latin1_csv_and_jsonl_follow_the_invalid_utf8_policy(tmp_path):
    text = "Café crème à la française, très bien. " * 5
    csv_path = tmp_path / "latin1.csv"
    rows = f'id,text\n1,"{text}"\n2,"plain ascii row"\n3,"Ça dépend {text}"\n'
    csv_path.write_bytes(rows.encode("latin-1"))
    line = json.dumps({"text": "Déjà vu: " + text}, ensure_ascii=False).encode("latin-1")
    jsonl = jsonl_lines(tmp_path / "latin1.jsonl", [line])
    manifest, rejected, written = run([csv_path, jsonl], tmp_path / "out")
    assert not rejected and manifest["counts"]["written"] == 4  # kept, not one binary_content
    assert manifest["counts"]["invalid_utf8"] == 3
    assert sum("\ufffd" in t and "bien." in t for t in written) == 3


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_with_byte_order_mark(tmp_path, texts, encoding):
    rows = [{"id": str(i), "text": t} for i, t in enumerate(texts[:5])]
    bom = {"utf-16-be": "\ufeff"}.get(encoding, "")  # the utf-16/utf-32 codecs write their own mark
    csv_path = tmp_path / "wide.csv"
    with csv_path.open("w", encoding=encoding, newline="") as handle:
        handle.write(bom)
        writer = csv.DictWriter(handle, fieldnames=["id", "text"])
        writer.writeheader()
        writer.writerows(rows)
    jsonl = tmp_path / "wide.jsonl"
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows[:2])
    jsonl.write_bytes((bom + lines).encode(encoding))
    txt = tmp_path / "page.txt"
    txt.write_bytes((bom + texts[7]).encode(encoding))
    manifest, rejected, written = run([csv_path, jsonl, txt], tmp_path / "out")
    assert not rejected and manifest["counts"]["invalid_utf8"] == 0
    assert sorted(written) == sorted(normalize_text(t) for t in texts[:5] + [texts[7]])
    assert manifest["counts"]["exact_duplicates"] == 2


def test_undecodable_utf16_is_counted_as_invalid(tmp_path, texts):
    path = tmp_path / "broken.jsonl"
    good = json.dumps({"text": texts[0]}).encode("utf-16-le")
    lone = json.dumps({"text": "lone X here"}).encode("utf-16-le")
    lone = lone.replace("X".encode("utf-16-le"), b"\x00\xd8")  # a high surrogate without its pair
    path.write_bytes(b"\xff\xfe" + good + "\n".encode("utf-16-le") + lone)
    manifest, rejected, written = run([path], tmp_path / "out")
    assert not rejected and manifest["counts"]["written"] == 2 and manifest["counts"]["invalid_utf8"] == 1
    assert "lone \ufffd here" in written
