"""Normalisation rules, content hashes, doc ids, offline domains and date parsing."""

from __future__ import annotations

import socket
import unicodedata

import pytest

from pipeline.normalize import (
    content_sha1,
    decode_utf8,
    make_doc_id,
    normalize_text,
    parse_date,
    registered_domain,
)


def test_nfc_whitespace_and_controls():
    decomposed = "Cafe\u0301 \t  au\x00 lait\x07\r\nligne 2  \r\n\r\n\r\n\r\nfin "
    out = normalize_text(decomposed)
    assert out == "Café au lait\nligne 2\n\nfin"
    assert unicodedata.is_normalized("NFC", out)


def test_paragraph_breaks_survive_but_collapse():
    assert normalize_text("User: hi\n\n\n\nAssistant: hello") == "User: hi\n\nAssistant: hello"
    assert normalize_text("a\nb") == "a\nb"


def test_whitespace_only_is_empty():
    assert normalize_text(" \t\r\n\u00a0\u3000 ") == ""


def test_invalid_utf8_is_replaced_and_reported():
    text, bad = decode_utf8(b"ok \xff\xfe bytes")
    assert bad and "\ufffd" in text and text.startswith("ok ")
    assert decode_utf8("naïve".encode()) == ("naïve", False)


def test_same_visible_text_same_hash(dev_human):
    sample = [r["text"] for r in dev_human[:: max(1, len(dev_human) // 200)]]
    for text in sample:
        variant = " \t" + unicodedata.normalize("NFD", text).replace(" ", " \t") + "\n "
        assert content_sha1(normalize_text(variant)) == content_sha1(normalize_text(text))
    hashes = {content_sha1(normalize_text(t)) for t in sample}
    assert len(hashes) == len({normalize_text(t) for t in sample})


def test_doc_id_is_stable_and_depends_on_source_and_content():
    sha = content_sha1("hello world")
    assert make_doc_id("crawl-a", sha) == make_doc_id("crawl-a", sha)
    assert make_doc_id("crawl-a", sha) != make_doc_id("crawl-b", sha)
    assert make_doc_id("crawl-a", sha) != make_doc_id("crawl-a", content_sha1("hello"))


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize(
    ("url", "domain"),
    [
        ("http://www.bbc.co.uk/news/1", "bbc.co.uk"),
        ("https://forums.example.com.au:8443/t?x=1", "example.com.au"),
        ("http://commoncrawl.org/", "commoncrawl.org"),
        ("http://user.github.io/page", "github.io"),  # public suffix list, ICANN section only
        ("http://127.0.0.1:8080/x", "127.0.0.1"),
        ("http://localhost:4200/", "localhost"),
        # reserved / private TLDs: the last two labels, so distinct sites stay distinct
        ("https://www.millbrook-herald.example/2024/a", "millbrook-herald.example"),
        ("https://qa-dump.example/q/1", "qa-dump.example"),
        ("http://wiki.team.corp.internal/x", "corp.internal"),
        ("not a url", None),
        ("", None),
        (None, None),
    ],
)
def test_registered_domain_offline(no_network, url, domain):
    assert registered_domain(url) == domain


def test_dates():
    assert parse_date("2017-03-06T04:03:53Z").isoformat() == "2017-03-06T04:03:53+00:00"
    assert parse_date("2008-10-29T05:21:46-07:00").isoformat() == "2008-10-29T12:21:46+00:00"
    assert parse_date("20170306040353").year == 2017
    assert parse_date(1_600_000_000).year == 2020
    assert parse_date(1_600_000_000_000).year == 2020  # milliseconds
    # ClueWeb09's malformed WARC-Date and other junk: unknown, never an exception.
    for junk in ("2008-10-294T05:21:46-0700", "yesterday", "", None, True, [1]):
        assert parse_date(junk) is None
