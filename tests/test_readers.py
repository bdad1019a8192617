"""Readers: format detection, field detection, compression, and the reference-set reader."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from pipeline.document import Document, ReaderStats, Rejection
from pipeline.normalize import normalize_text
from pipeline.readers import InputError, detect_format, expand_input, hidden_entries, iter_texts, read_input

FIELDS = ("id", "text", "source", "prompt_id", "prompt", "model")  # "id" first: a BOM would hide it


def sample(records: list[dict], n: int = 300) -> list[dict]:
    """A deterministic, evenly spread sample of at most ``n`` records (whatever the set's size)."""
    return records[:: max(1, len(records) // n)][:n]


def write_jsonl(path: Path, records: list[dict], compress: str | None = None) -> Path:
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()
    if compress == "gzip":
        data = gzip.compress(data)
    elif compress == "zstd":
        data = zstandard.ZstdCompressor().compress(data)
    path.write_bytes(data)
    return path


def write_csv(path: Path, records: list[dict], delimiter: str = ",", fields=FIELDS) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(fields), delimiter=delimiter, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(records)
    return path


def write_parquet(path: Path, records: list[dict], fields=FIELDS) -> Path:
    pq.write_table(pa.table({f: [r.get(f) for r in records] for f in fields}), path)
    return path


def read_all(path: Path, fmt: str | None = None, text_field: str = "text"):
    stats = ReaderStats()
    items = [item for spec in expand_input(path, fmt) for item in read_input(spec, text_field, stats)]
    docs = [i for i in items if isinstance(i, Document)]
    return docs, [i for i in items if isinstance(i, Rejection)], stats


@pytest.fixture(scope="module")
def records(dev_openai, dev_human) -> list[dict]:
    return sample(dev_openai, 150) + sample(dev_human, 150)


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.jsonl", "jsonl"), ("a.ndjson.gz", "jsonl"), ("a.json.zst", "jsonl"), ("a.csv", "csv"),
        ("a.TSV", "tsv"), ("a.parquet", "parquet"), ("a.txt", "text"), ("a.warc.gz", "warc"),
        ("CC-MAIN-x.warc.wet.gz", "wet"), ("a.wet", "wet"),
    ],
)
def test_detect_format_by_name(tmp_path, name, fmt):
    path = tmp_path / name
    path.write_bytes(b"x")
    assert detect_format(path) == fmt


def test_detect_format_by_content(tmp_path, records, warc_fixtures):
    jsonl = write_jsonl(tmp_path / "shard-0", records[:5], compress="gzip")
    parquet = write_parquet(tmp_path / "table-0", records[:5])
    warc = tmp_path / "crawl-0"
    warc.write_bytes(warc_fixtures[0].read_bytes())
    text = tmp_path / "README"
    text.write_text(records[0]["text"], encoding="utf-8")
    binary = tmp_path / "blob"
    binary.write_bytes(bytes(range(256)) * 40)
    assert [detect_format(p) for p in (jsonl, parquet, warc, text)] == ["jsonl", "parquet", "warc", "text"]
    with pytest.raises(InputError, match="unknown format"):
        detect_format(binary)
    with pytest.raises(InputError, match="not found"):
        detect_format(tmp_path / "missing.jsonl")


def test_format_override(tmp_path, records):
    path = write_jsonl(tmp_path / "export.dat", records[:10])
    docs, rejected, _ = read_all(path, fmt="jsonl")
    assert len(docs) == 10 and not rejected
    with pytest.raises(InputError, match="unknown format"):
        expand_input(path, fmt="xml")


@pytest.mark.parametrize("compress", [None, "gzip", "zstd"])
def test_jsonl_plain_and_compressed(tmp_path, records, compress):
    path = write_jsonl(tmp_path / "shard.jsonl", records, compress=compress)
    docs, rejected, _ = read_all(path)
    assert not rejected
    assert [doc.text for doc in docs] == [r["text"] for r in records]
    assert [doc.position for doc in docs] == list(range(1, len(records) + 1))
    assert [doc.source for doc in docs] == [r["source"] for r in records]
    assert docs[0].meta["model"] == records[0]["model"]


@pytest.mark.parametrize(
    ("fmt", "writer"), [("csv", write_csv), ("tsv", write_csv), ("parquet", write_parquet)]
)
def test_tabular_formats_keep_texts(tmp_path, records, fmt, writer):
    kwargs = {"delimiter": "\t"} if fmt == "tsv" else {}
    path = writer(tmp_path / f"table.{fmt}", records, **kwargs)
    docs, rejected, _ = read_all(path)
    assert not rejected
    assert [doc.text for doc in docs] == [r["text"] for r in records]  # multi-line texts survive quoting
    assert [doc.id for doc in docs] == [r["id"] for r in records]


@pytest.mark.parametrize(("name", "delimiter"), [("semi.csv", ";"), ("pipe.csv", "|"), ("tabs.csv", "\t"),
                                               ("commas.tsv", ",")])
def test_csv_delimiter_is_detected(tmp_path, records, name, delimiter):
    path = write_csv(tmp_path / name, records[:40], delimiter=delimiter)
    docs, rejected, _ = read_all(path)
    assert not rejected
    assert [doc.text for doc in docs] == [r["text"] for r in records[:40]]
    assert [doc.id for doc in docs] == [r["id"] for r in records[:40]]


def test_csv_without_text_column_counts_each_row_once(tmp_path, records):
    # No delimiter gives a text column: the sniffed one still splits rows, one rejection per record.
    path = write_csv(tmp_path / "semi.csv", records[:25], delimiter=";", fields=("id", "body", "source"))
    docs, rejected, _ = read_all(path)
    assert not docs and len(rejected) == 25
    assert {r.reason for r in rejected} == {"missing_text_field"}
    assert "body, id, source" in rejected[0].detail


def test_text_field_and_common_field_names(tmp_path, records):
    rows = [
        {"body": r["text"], "Link": f"https://www.site{i % 3}.co.uk/p/{i}",
         "WARC-Date": "2021-05-01T10:00:00Z", "site": f"site{i % 3}", "lang": "en"}
        for i, r in enumerate(records[:20])
    ]
    path = write_jsonl(tmp_path / "crawl.jsonl", rows)
    docs, rejected, _ = read_all(path, text_field="body")
    assert not rejected and len(docs) == 20
    assert docs[4].url == "https://www.site1.co.uk/p/4" and docs[4].source == "site1"
    assert docs[4].date == "2021-05-01T10:00:00Z" and docs[4].meta == {"lang": "en"}
    # Without --text-field the same file has no text.
    _, rejected, _ = read_all(path)
    assert {r.reason for r in rejected} == {"missing_text_field"} and len(rejected) == 20


def test_text_folder_one_document_per_file(tmp_path, records):
    folder = tmp_path / "pages"
    (folder / "sub").mkdir(parents=True)
    for i, r in enumerate(records[:12]):
        (folder / ("sub" if i % 2 else ".") / f"doc{i:02d}.txt").write_text(r["text"], encoding="utf-8")
    (folder / ".hidden").write_text("editor swap file")
    specs = expand_input(folder)
    assert len(specs) == 1 and specs[0].fmt == "text" and len(specs[0].files) == 12
    docs, rejected, _ = read_all(folder)
    assert not rejected
    assert sorted(d.text for d in docs) == sorted(r["text"] for r in records[:12])
    assert {d.id for d in docs} >= {"doc00.txt", "sub/doc01.txt"}
    assert hidden_entries([folder]) == [str(folder / ".hidden")]


def test_iter_texts_reference_set(tmp_path, records):
    folder = tmp_path / "refs"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl.gz", records[:100], compress="gzip")
    write_parquet(folder / "b.parquet", records[100:200])
    write_csv(folder / "c.csv", records[200:])
    out = list(iter_texts(folder))
    assert [o["text"] for o in out] == [normalize_text(r["text"]) for r in records]
    assert [o["id"] for o in out] == [r["id"] for r in records]
    assert [o["prompt_id"] for o in out] == [r["prompt_id"] or None for r in records]
    assert all(set(o) == {"id", "text", "source", "prompt_id", "prompt", "meta"} for o in out)


def test_iter_texts_skips_unusable_records_with_a_warning(tmp_path, records, caplog):
    path = tmp_path / "refs.jsonl"
    lines = [json.dumps(records[0]), "{broken", json.dumps({"text": "   "}), json.dumps(records[1])]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = list(iter_texts(path))
    assert [o["id"] for o in out] == [records[0]["id"], records[1]["id"]]
    assert "skipped 2 unusable records" in caplog.text
    with pytest.raises(InputError):
        list(iter_texts(tmp_path / "nope.jsonl"))


def test_byte_order_mark_is_not_part_of_the_first_field(tmp_path, records):
    csv_path = write_csv(tmp_path / "excel.csv", records[:3])
    csv_path.write_bytes(b"\xef\xbb\xbf" + csv_path.read_bytes())
    jsonl_path = write_jsonl(tmp_path / "bom.jsonl", records[:3])
    jsonl_path.write_bytes(b"\xef\xbb\xbf" + jsonl_path.read_bytes())
    for path in (csv_path, jsonl_path):
        docs, rejected, _ = read_all(path)
        assert not rejected and [d.id for d in docs] == [r["id"] for r in records[:3]]


def warc_record(kind: str, uri: str, block: bytes, content_type: str,
                date: str = "2024-03-01T10:00:00Z") -> bytes:
    """One WARC/1.1 record, gzipped on its own as crawlers write them."""
    record_id = hashlib.md5(f"{kind} {uri}".encode()).hexdigest()
    head = (
        f"WARC/1.1\r\nWARC-Type: {kind}\r\nWARC-Record-ID: <urn:uuid:{record_id}>\r\n"
        f"WARC-Date: {date}\r\nWARC-Target-URI: {uri}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(block)}\r\n\r\n"
    ).encode()
    return gzip.compress(head + block + b"\r\n\r\n")


def http_response(body: bytes, content_type: str, status: str = "200 OK") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def test_wet_conversion_records_are_taken_as_text(tmp_path, records):
    texts = [r["text"] for r in records[:4]]
    data = warc_record("warcinfo", "", b"software: test\r\n", "application/warc-fields")
    for i, text in enumerate(texts):
        data += warc_record("conversion", f"https://news.example.org/a/{i}", text.encode(), "text/plain")
    path = tmp_path / "CC-MAIN-test.warc.wet.gz"
    path.write_bytes(data)
    assert detect_format(path) == "wet"
    renamed = tmp_path / "segment-0"
    renamed.write_bytes(data)
    assert detect_format(renamed) == "wet"  # by content
    docs, rejected, stats = read_all(path)
    assert not rejected and [d.text for d in docs] == texts
    assert docs[1].url == "https://news.example.org/a/1" and docs[1].date == "2024-03-01T10:00:00Z"
    assert stats.skipped == {"warcinfo": 1}


def test_warc_skips_non_documents_by_kind(tmp_path, records):
    html = f"<html><body><article><h1>Title</h1><p>{records[0]['text']}</p></article></body></html>".encode()
    http = "application/http; msgtype=response"
    png = b"\x89PNG\r\n\x1a\n" + bytes(200)
    data = b"".join([
        warc_record("request", "https://a.example.com/", b"GET / HTTP/1.1\r\n\r\n", "application/http"),
        warc_record("response", "https://a.example.com/", http_response(html, "text/html; charset=UTF-8"),
                    http),
        warc_record("response", "https://a.example.com/logo.png", http_response(png, "image/png"), http),
        warc_record("response", "https://a.example.com/gone",
                    http_response(b"<html>gone</html>", "text/html", "404 Not Found"), http),
        warc_record("response", "https://a.example.com/robots.txt",
                    http_response(records[1]["text"].encode(), "text/plain"), http),
        warc_record("metadata", "https://a.example.com/", b"fetchTimeMs: 12\r\n", "application/warc-fields"),
    ])
    path = tmp_path / "crawl.warc.gz"
    path.write_bytes(data)
    docs, rejected, stats = read_all(path)
    assert not rejected
    # robots.txt (text/plain) and the PNG are both non-HTML responses.
    assert stats.skipped == {"request": 1, "response_non_html": 2, "response_not_ok": 1, "metadata": 1}
    assert len(docs) == 1
    assert " ".join(records[0]["text"].split()) in " ".join(docs[0].text.split())


def test_json_array_file(tmp_path, records):
    path = tmp_path / "alpaca_style.json"
    path.write_bytes(json.dumps([*records[:5], "stray string"], indent=2).encode())
    docs, rejected, _ = read_all(path)
    assert [d.text for d in docs] == [r["text"] for r in records[:5]]
    assert [(r.reason, r.position) for r in rejected] == [("not_an_object", 6)]
    # A JSONL file whose first line happens to be an array is still read line by line.
    lines = tmp_path / "lines.jsonl"
    lines.write_text("[1, 2]\n" + "".join(json.dumps(r) + "\n" for r in records[:3]), encoding="utf-8")
    docs, rejected, _ = read_all(lines)
    assert len(docs) == 3 and [(r.reason, r.position) for r in rejected] == [("not_an_object", 1)]


def test_html_files_in_a_folder_give_main_text(tmp_path, records):
    folder = tmp_path / "saved"
    folder.mkdir()
    body = next(r["text"] for r in records if not r["text"].isascii() and _encodes(r["text"], "cp1252"))
    page = f"<html><head><meta charset=windows-1252><title>t</title><script>var x = 1;</script></head>" \
           f"<body><nav>Home | About</nav><article><p>{body}</p></article></body></html>"
    (folder / "page.html").write_bytes(page.encode("cp1252"))  # a legacy encoding, detected
    docs, rejected, _ = read_all(folder)
    assert not rejected and len(docs) == 1
    assert " ".join(body.split()) in " ".join(docs[0].text.split()) and "var x" not in docs[0].text


def _encodes(text: str, encoding: str) -> bool:
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


def test_bytes_in_the_latin1_range_are_text_only_when_mostly_ascii():
    from pipeline.readers import looks_binary

    sentence = "Caf\u00e9 cr\u00e8me, na\u00efve fa\u00e7ade \u00e0 la fran\u00e7aise. "
    latin1 = (sentence * 200).encode("latin-1")
    assert not looks_binary(latin1[:8192])
    # erased flash (0xFF padding) or data in 0xA0-0xFF is not text, though it has no C1 bytes
    assert looks_binary(b"\xff" * 8192)
    assert looks_binary(bytes(range(0xA0, 0x100)) * 64)
