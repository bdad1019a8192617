"""MinHash detector: find copies of known teacher outputs, whole or embedded, and template clusters.

What it measures
----------------
A :class:`ReferenceIndex` holds MinHash signatures of teacher reference texts (e.g. answers
collected from the teacher's API) in a datasketch :class:`~datasketch.MinHashLSH`. For every
scored document it reports

- ``similarity``: the largest Jaccard similarity between the document's shingle set and the
  shingle set of any candidate reference;
- ``containment``: the largest share of a candidate reference's shingles that occur in the
  document (``|R & D| / |R|``), which is high when a reference is embedded in a longer page;
  only references sharing at least ``MATCH_MIN_SHARED_SHINGLES`` shingles with the document
  count here (a 10-word reference whose one common phrase occurs in a page proves nothing);
- ``reference_id``: set only when the document counts as a copy: a reference reaches
  ``MATCH_CONTAINMENT_THRESHOLD`` (or ``MATCH_SIMILARITY_THRESHOLD``) *and* passes the alignment
  check below. Candidates are tried best containment first (then best similarity), up to four;
  otherwise ``None``.
- ``aligned_coverage`` / ``aligned_purity``: the alignment check's figures for the matched
  reference (or for the best candidate when none passed; 0 when no candidate reached a set
  threshold).

The set thresholds (similarity 0.5, containment 0.4) were chosen on the dev data: 10% word
deletions keep about 0.9**5 = 59% of a reference's 5-grams and truncation to 60% keeps about
60%, so containment 0.4 leaves room for the spread on short texts.

Copies and rewrites (the alignment check)
-----------------------------------------
Shared 5-grams alone cannot tell a copy of a teacher text from a *human text the teacher
rewrote* (paraphrase and "rewrite this" datasets put both in the wild): a light rewrite keeps
40-90% of the 5-grams. On the dev data the set thresholds alone matched 53 of 12,212 human texts
(0.43%), 52 of them the sources of rewrites in the reference set. What differs is the edit: a
copy *loses* words (deletions, truncation, a page around it), a rewrite *replaces* them. So each
candidate is aligned in order on its units (a longest common subsequence of the units' 32-bit
hashes, in runs of at least ``MATCH_ALIGNED_MIN_RUN`` units; :func:`aligned_overlap`): the aligned
units must cover ``MATCH_ALIGNED_COVERAGE`` (0.75) of the reference or of the document, and make
up ``MATCH_ALIGNED_PURITY`` (0.93) of the document's stretch between its first and last aligned
run. Measured on the dev data (tests/test_minhash_quality.py): recall under every edit of the
issue stays at 0.977-0.999 and human false matches fall to 9 of 12,212 (0.074%); two of those are
shingle-identical to a teacher answer. A purity of 0.93 tolerates ~7% inserted words inside a
copied stretch (page furniture such as "Copy code" or citation marks); 0.95 would give 7 false
matches, 0.90 twelve (bench/minhash_alignment_sweep.py has the sweep). These thresholds were
chosen on the same dev texts, so 0.074% is an in-sample figure. The alignment runs only for
documents that reach a set threshold, on the stretch of the document around the shared shingles,
so it costs little on ordinary crawls.

Shingles and signatures are defined exactly in :mod:`detectors.shingles` (word 5-grams by
default; signatures bit-identical to datasketch 2.0 ``MinHash`` with the xxh32-based
``hashfunc`` :func:`detectors.shingles.shingle_hash`). A text with fewer units than ``ngram``
has no shingles: its scores are ``0.0, 0.0, None`` (no match), and as a reference it is
skipped (counted in :meth:`ReferenceIndex.describe`).

How containment is found (segment windows, not LSH Ensemble)
------------------------------------------------------------
The LSH answers Jaccard queries, and a reference that is 20% of a page has a whole-page
Jaccard near 0.2. So a document is queried not only as a whole but also as windows: its
shingles are cut into blocks of ``window_block`` consecutive shingles, and windows of
1, 2, 4, 8, ... blocks (stride half a window) are queried as well. Some window is roughly the
size of an embedded reference and overlaps it mostly, so its Jaccard with the reference is
high (about 0.5 or more for an intact copy) and the LSH returns it as a candidate. Window
signatures cost almost nothing: they are element-wise minima of block signatures, which are
computed in the same numpy pass as the document signature.

Every candidate is then verified *exactly*: the index stores each reference's sorted unique
shingle hashes, so ``similarity`` and ``containment`` are exact set measures over 32-bit
shingle hashes, not MinHash estimates. The LSH only proposes; the stored sets decide.

MinHashLSHEnsemble was not used: it indexes containment of the *query* in the indexed set
(``|Q & X| / |Q|``), the opposite direction; it must be built in one go (no incremental
inserts) and partitions by set size, and its Redis support is less direct. Windows keep one
plain MinHashLSH that datasketch users and Redis workers can share.

Persistence
-----------
``save`` writes ``index.json`` (format name and version, parameters, LSH bands, checksums),
``signatures.npy`` (uint32, references x num_perm), ``shingles.npy`` + ``shingle_offsets.npy``
(the reference shingle sets), ``units.npy`` + ``unit_offsets.npy`` (each reference's unit hashes
in order, for the alignment check) and ``references.parquet`` (ids). Arrays are loaded with
``allow_pickle=False``; nothing is ever pickled (Redis keys are plain bytes, ``prepickle=False``).
``load`` verifies format version, checksums (a truncated or corrupt file is refused with the
file name), and a probe signature (a changed hash implementation is refused).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from itertools import compress
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import datasketch
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from datasketch import LeanMinHash, MinHashLSH
from rapidfuzz.distance import Indel

from detectors.clusters import TemplateClusterer, cluster_documents
from detectors.shingles import (
    batch_bounds,
    permutations,
    segment_minima,
    shingle_hashes,
    shingles_from_units,
    signatures_from_hashes,
    unit_hashes,
)
from pipeline.storage import INDEX_OUTPUT, atomic_directory, atomic_write_json, load_arrays, write_table

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MATCH_ALIGNED_COVERAGE",
    "MATCH_ALIGNED_PURITY",
    "MATCH_CONTAINMENT_THRESHOLD",
    "MATCH_MIN_SHARED_SHINGLES",
    "MATCH_SIMILARITY_THRESHOLD",
    "MinHashIndexError",
    "MinHashParams",
    "MinHashScores",
    "ReferenceIndex",
    "aligned_overlap",
    "TemplateClusterer",
    "cluster_documents",
    "is_match",
    "minhash_signatures",
    "redacted_url",
    "redis_storage_config",
]

FORMAT_NAME = "distill-audit/minhash-index"
# 2: the ordered unit hashes of every reference are stored (units.npy) for the alignment check.
FORMAT_VERSION = 2

#: A document counts as a copy of a reference when its Jaccard similarity with it reaches this ...
MATCH_SIMILARITY_THRESHOLD = 0.5
#: ... or when this share of a reference's shingles occurs in the document.
MATCH_CONTAINMENT_THRESHOLD = 0.4
#: Containment only counts for a reference sharing at least this many shingles with the
#: document: a 10-word reference whose one common phrase occurs in a page is no evidence of
#: copying (such short references are still found as whole-document near-copies).
MATCH_MIN_SHARED_SHINGLES = 8
#: Alignment check of a candidate copy (see "Copies and rewrites" in the module docstring):
#: units aligned in order, in runs of at least ``MATCH_ALIGNED_MIN_RUN``, must cover this share of
#: the reference or of the document ...
MATCH_ALIGNED_COVERAGE = 0.75
#: ... and make up this share of the document's aligned stretch (a copy loses words, a rewrite
#: replaces them).
MATCH_ALIGNED_PURITY = 0.93
MATCH_ALIGNED_MIN_RUN = 2
#: Seconds to wait for a Redis connection before giving up (unless the URL sets one).
REDIS_CONNECT_TIMEOUT = 10.0
# A worker filling a shared Redis index holds a lock that expires after _FILL_LOCK_SECONDS unless
# renewed (it renews while filling), so a worker that dies frees it quickly; others wait up to
# _FILL_WAIT_SECONDS for it.
_FILL_LOCK_SECONDS = 60
_FILL_WAIT_SECONDS = 3600
#: Candidates (best containment first) tried against the alignment check per document.
_MAX_ALIGNED_CANDIDATES = 4

_PROBE_TEXT = (
    "The quick brown fox jumps over the lazy dog, then the dog sleeps while the fox "
    "writes an essay about distillation and minhash signatures in several languages: 中文测试."
)
_BATCH = 2048


class MinHashIndexError(ValueError):
    """An index directory that cannot be used: other parameters or version, corrupt or truncated files."""


@dataclass(frozen=True)
class MinHashParams:
    """Parameters of signatures, the reference LSH and document clustering.

    shingle: "word" (word n-grams) or "char" (character n-grams); see :mod:`detectors.shingles`.
    ngram: units per shingle. num_perm, seed: datasketch MinHash parameters.
    lsh_threshold: Jaccard threshold the reference LSH is tuned for (datasketch picks bands x rows;
        low, because candidates are verified exactly and windows only partly overlap a reference).
    cluster_threshold: Jaccard threshold of the corpus-internal LSH used by :func:`cluster_documents`.
    window_block: shingles per block of the containment windows.
    """

    shingle: str = "word"
    ngram: int = 5
    num_perm: int = 128
    seed: int = 1
    lsh_threshold: float = 0.2
    cluster_threshold: float = 0.5
    window_block: int = 16

    def __post_init__(self) -> None:
        if self.shingle not in ("word", "char"):
            raise ValueError(f"shingle must be 'word' or 'char', got {self.shingle!r}")
        if self.ngram < 1:
            raise ValueError(f"ngram must be >= 1, got {self.ngram}")
        if self.num_perm < 2:
            raise ValueError(f"num_perm must be >= 2, got {self.num_perm}")
        for name in ("lsh_threshold", "cluster_threshold"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(f"{name} must be in (0, 1), got {value}")
        if self.window_block < 1:
            raise ValueError(f"window_block must be >= 1, got {self.window_block}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MinHashParams:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise MinHashIndexError(f"unknown MinHash parameters {unknown}")
        return cls(**data)


@dataclass
class MinHashScores:
    """Per-document scores (see the module docstring for exact definitions)."""

    similarity: np.ndarray  # float32
    containment: np.ndarray  # float32
    reference_id: list[str | None]
    shared_shingles: np.ndarray  # int64, shingles shared with the matched reference (0 if none)
    aligned_coverage: np.ndarray | None = None  # float32, alignment check of the best candidate
    aligned_purity: np.ndarray | None = None  # float32 (0 where no candidate reached the thresholds)

    def __len__(self) -> int:
        return len(self.reference_id)


def is_match(similarity: np.ndarray, containment: np.ndarray) -> np.ndarray:
    """Boolean array: which documents reach the set thresholds (similarity or containment).

    This is the first half of the copy decision; :meth:`ReferenceIndex.score` also requires the
    alignment check, and sets ``reference_id`` only where both hold.
    """
    return (np.asarray(similarity) >= MATCH_SIMILARITY_THRESHOLD) | (
        np.asarray(containment) >= MATCH_CONTAINMENT_THRESHOLD
    )


def redis_storage_config(url: str, basename: str | None = None) -> dict[str, Any]:
    """The ``storage_config`` for a Redis URL: ``redis://[user:password@]host[:port][/db]`` or
    ``rediss://`` for TLS, query options as redis-py reads them (e.g. ``?socket_timeout=5``).

    Parsed by redis-py itself (percent-encoded credentials are decoded). A connect timeout of
    ``REDIS_CONNECT_TIMEOUT`` seconds applies unless the URL sets one, so an unreachable server
    fails instead of hanging. Without ``basename`` the index derives one from its content.
    """
    from redis.connection import SSLConnection, parse_url

    parsed = urlparse(url)
    if parsed.scheme not in ("redis", "rediss"):
        raise ValueError(f"not a Redis URL: {redacted_url(url)!r} (expected redis://host[:port][/db])")
    if not parsed.path.strip("/").isdigit() and parsed.path.strip("/"):
        # redis-py would silently fall back to database 0
        raise ValueError(f"Redis URL {redacted_url(url)!r}: the database must be a number")
    try:
        connection = parse_url(url)
    except ValueError as exc:
        raise ValueError(f"Redis URL {redacted_url(url)!r}: {exc}") from exc
    if not connection.get("host"):
        raise ValueError(f"Redis URL {redacted_url(url)!r} names no host")
    # redis.Redis() takes ssl=True where a connection pool takes a connection class
    if connection.pop("connection_class", None) is SSLConnection:
        connection["ssl"] = True
    connection.setdefault("socket_connect_timeout", REDIS_CONNECT_TIMEOUT)
    config: dict[str, Any] = {"type": "redis", "redis": connection}
    if basename:
        config["basename"] = basename
    return config


def redacted_url(url: str) -> str:
    """``url`` without secrets, for messages and logs: the password (between the user name and the
    last ``@``) becomes ``***`` and the query (``?password=...``) is dropped.

    Built from the raw string, not from ``urlparse``: a password holding ``/``, ``?`` or ``#``
    (not percent-encoded, as redis-py accepts it) ends urlparse's host part early, so the
    password was not recognised as one and was printed as given.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    if "@" in rest:
        userinfo, host = rest.rsplit("@", 1)
        # the user name (before the first ":") stays, for telling accounts apart; without a ":"
        # the whole part may be a password (some clients take it so)
        user = userinfo.split(":", 1)[0] if ":" in userinfo else ""
        rest = f"{user}:***@{host}"
    rest = rest.split("?", 1)[0].split("#", 1)[0]
    return f"{scheme}{sep}{rest}"


def minhash_signatures(texts: Sequence[str], params: MinHashParams = MinHashParams()) -> np.ndarray:
    """Signatures of ``texts``: an ``n x num_perm`` uint64 array.

    Row ``i`` equals ``datasketch.MinHash(num_perm, seed, hashfunc=shingle_hash)`` updated with the
    shingles of ``texts[i]`` (values < 2**32; datasketch stores them as uint32, ``.astype(np.uint32)``
    gives its exact ``hashvalues``). A text without shingles gets the empty signature.
    """
    out = np.empty((len(texts), params.num_perm), dtype=np.uint64)
    for start, stop in batch_bounds(texts, _BATCH):
        chunk = [text or "" for text in texts[start:stop]]
        hashes, offsets = shingle_hashes(chunk, params.shingle, params.ngram)
        signatures = signatures_from_hashes(hashes, offsets, params.num_perm, params.seed)
        out[start : start + len(chunk)] = signatures
    return out


def aligned_overlap(
    doc_units: Sequence[int],
    ref_units: Sequence[int],
    min_run: int = MATCH_ALIGNED_MIN_RUN,
    doc_length: int | None = None,
) -> tuple[float, float]:
    """``(coverage, purity)`` of the in-order alignment of two unit sequences.

    The alignment is a longest common subsequence of the document's and the reference's units
    (rapidfuzz ``Indel.opcodes``: insertions and deletions only); its unbroken runs of at least
    ``min_run`` units count as aligned. ``coverage`` is aligned units / the shorter sequence's
    length (the share of the reference, or of the document, that is aligned). ``purity`` is
    aligned units / the length of the document stretch from the first to the last aligned run: a
    copy with words deleted, truncated or embedded in a page keeps ~1.0; a rewrite that
    substitutes words leaves unaligned words inside the stretch. Both are 0.0 when nothing
    aligns. ``doc_units`` may be the part of a long document around the shared shingles;
    ``doc_length`` is then the whole document's number of units (for ``coverage``).
    """
    if len(doc_units) == 0 or len(ref_units) == 0:
        return 0.0, 0.0
    runs = [
        (op.src_start, op.src_end)
        for op in Indel.opcodes(list(doc_units), list(ref_units))
        if op.tag == "equal" and op.src_end - op.src_start >= min_run
    ]
    if not runs:
        return 0.0, 0.0
    aligned = sum(end - start for start, end in runs)
    stretch = runs[-1][1] - runs[0][0]
    doc_length = len(doc_units) if doc_length is None else doc_length
    return aligned / min(doc_length, len(ref_units)), aligned / stretch


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _band_keys(signatures: np.ndarray, start: int, end: int) -> list[bytes]:
    """datasketch MinHashLSH's bucket keys for one band: big-endian bytes of the band's uint32 values."""
    band = np.ascontiguousarray(signatures[:, start:end], dtype=">u4")
    return band.view(np.dtype((np.void, (end - start) * 4))).ravel().tolist()


def _window_signatures(blocks: np.ndarray) -> np.ndarray:
    """Signatures of the whole document and of windows of 1, 2, 4, ... blocks (stride half a window)."""
    n_blocks = len(blocks)
    parts = [blocks.min(axis=0, keepdims=True)]
    if n_blocks > 1:
        parts.append(blocks)
        level, size = blocks, 1
        while size * 2 < n_blocks:
            level = np.minimum(level[:-size], level[size:])  # windows of 2 * size blocks
            size *= 2
            parts.append(level[:: size // 2])
            parts.append(level[-1:])
    return np.concatenate(parts)


class ReferenceIndex:
    """MinHash LSH index of teacher reference texts with exact verification of candidates.

    ``storage_config`` is passed to datasketch's MinHashLSH: ``None`` for in-memory, or
    ``{"type": "redis", "redis": {"host": ..., "port": ...}, "basename": b"..."}`` so several
    workers share one index. Without a ``basename`` one is derived from the index content, so
    different indexes can share one Redis and workers loading the same index share its keys.
    """

    def __init__(self, params: MinHashParams = MinHashParams(), storage_config: dict | None = None) -> None:
        self.params = params
        self.storage_config = storage_config

    # ------------------------------------------------------------------ building
    def fit(self, texts: Sequence[str], ids: Sequence[str]) -> ReferenceIndex:
        """Index ``texts`` under ``ids`` (unique strings). Texts without shingles are skipped."""
        if len(texts) != len(ids):
            raise ValueError(f"fit got {len(texts)} texts but {len(ids)} ids")
        ids = [str(i) for i in ids]
        if len(set(ids)) != len(ids):
            raise ValueError("reference ids must be unique")
        params = self.params
        signature_parts, shingle_parts, count_parts, kept_ids = [], [], [], []
        unit_parts, unit_count_parts = [], []
        for start, stop in batch_bounds(texts, _BATCH):
            chunk = [text or "" for text in texts[start:stop]]
            units, unit_offsets = unit_hashes(chunk, params.shingle)
            hashes, offsets = shingles_from_units(units, unit_offsets, params.ngram)
            signatures = signatures_from_hashes(hashes, offsets, params.num_perm, params.seed)
            for i in range(len(chunk)):
                lo, hi = offsets[i], offsets[i + 1]
                if hi == lo:
                    continue
                unique = np.unique(hashes[lo:hi])
                shingle_parts.append(unique)
                count_parts.append(len(unique))
                unit_parts.append(units[unit_offsets[i] : unit_offsets[i + 1]])
                unit_count_parts.append(int(unit_offsets[i + 1] - unit_offsets[i]))
                kept_ids.append(ids[start + i])
            signature_parts.append(signatures[np.diff(offsets) > 0])
        self._set_arrays(
            signatures=(
                np.concatenate(signature_parts)
                if signature_parts
                else np.zeros((0, params.num_perm), dtype=np.uint32)
            ),
            shingles=np.concatenate(shingle_parts) if shingle_parts else np.zeros(0, dtype=np.uint32),
            offsets=np.concatenate(([0], np.cumsum(count_parts, dtype=np.int64))).astype(np.int64),
            ids=kept_ids,
            n_skipped_short=len(texts) - len(kept_ids),
            units=np.concatenate(unit_parts) if unit_parts else np.zeros(0, dtype=np.uint32),
            unit_offsets=np.concatenate(([0], np.cumsum(unit_count_parts, dtype=np.int64))).astype(np.int64),
        )
        self._content_sha256 = self._content_digest()
        self._build_lsh()
        return self

    def _set_arrays(
        self,
        signatures: np.ndarray,
        shingles: np.ndarray,
        offsets: np.ndarray,
        ids: list[str],
        n_skipped_short: int,
        units: np.ndarray,
        unit_offsets: np.ndarray,
    ) -> None:
        self._signatures = signatures
        self._units = units
        self._unit_offsets = unit_offsets
        self._shingles = shingles
        self._offsets = offsets
        self._ids = ids
        self._n_skipped_short = n_skipped_short

    def _content_digest(self) -> str:
        digest = hashlib.sha256()
        digest.update(json.dumps(self.params.to_dict(), sort_keys=True).encode())
        digest.update(np.ascontiguousarray(self._signatures).tobytes())
        digest.update("\n".join(self._ids).encode("utf-8"))
        return digest.hexdigest()

    def _lsh_storage_config(self) -> dict:
        if not self.storage_config:
            return {"type": "dict"}
        config = dict(self.storage_config)
        basename = config.get("basename") or f"distill-audit:minhash:{self._content_sha256[:16]}"
        config["basename"] = basename.encode("utf-8") if isinstance(basename, str) else basename
        return config

    def _build_lsh(self) -> None:
        config = self._lsh_storage_config()
        if config.get("type") != "redis":
            self._fill_lsh(config)
            return
        import redis

        # Several workers may load the same index at once (e.g. the audit's corpus and baseline
        # detect tasks): one fills the shared buckets under a lock, the others wait and reuse them.
        # A marker written after a complete fill tells a finished index from one whose filling
        # worker died half-way; the latter is deleted and filled again.
        basename = config["basename"]
        marker = basename + b":complete"
        client = redis.Redis(**config.get("redis", {}))
        lock = client.lock(
            basename + b":build-lock", timeout=_FILL_LOCK_SECONDS, blocking_timeout=_FILL_WAIT_SECONDS
        )
        if not lock.acquire():
            raise MinHashIndexError(
                f"timed out after {_FILL_WAIT_SECONDS} s waiting for another worker to fill the Redis "
                f"index {basename!r}"
            )
        try:
            done = client.get(marker)
            if done is not None and done != self._content_sha256.encode():
                raise MinHashIndexError(
                    f"storage basename {basename!r} already holds a different index; use another basename"
                )
            if done is None:
                pattern = re.sub(rb"([*?\[\]\\])", rb"\\\1", basename) + b"_*"
                stale = list(client.scan_iter(match=pattern, count=1000))
                for start in range(0, len(stale), 1000):
                    client.delete(*stale[start : start + 1000])
            self._fill_lsh(config, renew=lock.reacquire)
            if done is None:
                client.set(marker, self._content_sha256)
        finally:
            # LockError: the lock expired while we worked, so there is nothing to release
            with contextlib.suppress(redis.exceptions.LockError):
                lock.release()

    def _fill_lsh(self, config: dict, renew: Callable[[], object] | None = None) -> None:
        self._lsh = MinHashLSH(
            threshold=self.params.lsh_threshold,
            num_perm=self.params.num_perm,
            storage_config=config,
            prepickle=False,
        )
        n = len(self._ids)
        present = self._lsh.keys.size()
        if present:
            # A shared (Redis) index someone already filled: use it if it is this index.
            if present != n or not self._stored_bands_match():
                raise MinHashIndexError(
                    f"storage basename {config['basename']!r} already holds a different index "
                    f"({present} keys, this index has {n} references); use another basename"
                )
            return
        seed = self.params.seed
        # Flushed every 5,000 references, as often as the fill lock is renewed.
        with self._lsh.insertion_session(buffer_size=5_000) as session:
            for row in range(n):
                session.insert(
                    b"%d" % row,
                    LeanMinHash(seed=seed, hashvalues=self._signatures[row], scheme="affine32"),
                    check_duplication=False,
                )
                if renew is not None and row % 5_000 == 4_999:
                    renew()

    def _stored_bands_match(self) -> bool:
        for row in {0, len(self._ids) - 1}:
            stored = list(self._lsh.keys.get(b"%d" % row))
            expected = [_band_keys(self._signatures[row : row + 1], s, e)[0] for s, e in self._lsh.hashranges]
            if stored != expected:
                return False
        return True

    # ------------------------------------------------------------------ persistence
    def save(self, index_dir: str | Path) -> Path:
        """Write the index to ``index_dir`` atomically (replacing an existing one)."""
        self._require_fitted()
        target = Path(index_dir)
        with atomic_directory(target, INDEX_OUTPUT) as tmp:
            np.save(tmp / "signatures.npy", self._signatures, allow_pickle=False)
            np.save(tmp / "shingles.npy", self._shingles, allow_pickle=False)
            np.save(tmp / "shingle_offsets.npy", self._offsets, allow_pickle=False)
            np.save(tmp / "units.npy", self._units, allow_pickle=False)
            np.save(tmp / "unit_offsets.npy", self._unit_offsets, allow_pickle=False)
            write_table(
                tmp / "references.parquet",
                pa.table(
                    {
                        "reference_id": pa.array(self._ids, type=pa.string()),
                        "n_shingles": pa.array(np.diff(self._offsets), type=pa.int64()),
                    }
                ),
            )
            files = {
                name: _sha256(tmp / name)
                for name in (
                    "signatures.npy",
                    "shingles.npy",
                    "shingle_offsets.npy",
                    "units.npy",
                    "unit_offsets.npy",
                    "references.parquet",
                )
            }
            meta = self.describe()
            meta["files"] = files
            meta["probe_signature"] = minhash_signatures([_PROBE_TEXT], self.params)[0].tolist()
            atomic_write_json(tmp / "index.json", meta)
        return target

    @classmethod
    def load(
        cls, index_dir: str | Path, storage_config: dict | None = None, params: MinHashParams | None = None
    ) -> ReferenceIndex:
        """Load an index written by :meth:`save`.

        Raises :class:`MinHashIndexError` when the directory is not such an index, was written by
        another format version, was built with other ``params`` (when given), or a file is corrupt.
        """
        root = Path(index_dir)
        meta_path = root / "index.json"
        if not meta_path.is_file():
            raise MinHashIndexError(f"{root} is not a MinHash index: {meta_path.name} is missing")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MinHashIndexError(f"{meta_path} is corrupt or truncated: {exc}") from exc
        if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
            raise MinHashIndexError(f"{root} is not a MinHash index (format {meta.get('format')!r})")
        if meta.get("format_version") != FORMAT_VERSION:
            raise MinHashIndexError(
                f"{root} has MinHash index format version {meta.get('format_version')}, this code reads "
                f"version {FORMAT_VERSION}: rebuild the index with `distill-audit index`"
            )
        stored = MinHashParams.from_dict(meta["params"])
        if params is not None and params != stored:
            diff = {
                name: (value, getattr(params, name))
                for name, value in stored.to_dict().items()
                if getattr(params, name) != value
            }
            raise MinHashIndexError(
                f"{root} was built with other MinHash parameters (stored vs requested: {diff}); "
                "rebuild the index or use its parameters"
            )
        for name, checksum in meta.get("files", {}).items():
            path = root / name
            if not path.is_file():
                raise MinHashIndexError(f"index file {path} is missing")
            if _sha256(path) != checksum:
                raise MinHashIndexError(f"index file {path} is corrupt or truncated (checksum mismatch)")
        if minhash_signatures([_PROBE_TEXT], stored)[0].tolist() != meta.get("probe_signature"):
            raise MinHashIndexError(
                f"{root} was built with a different shingle hash or permutation scheme "
                f"(datasketch {meta.get('datasketch_version')}, now {datasketch.__version__}): rebuild it"
            )
        try:
            signatures, shingles, offsets, units, unit_offsets = load_arrays(
                lambda: (
                    np.load(root / "signatures.npy", allow_pickle=False),
                    np.load(root / "shingles.npy", allow_pickle=False, mmap_mode="r"),
                    np.load(root / "shingle_offsets.npy", allow_pickle=False),
                    np.load(root / "units.npy", allow_pickle=False, mmap_mode="r"),
                    np.load(root / "unit_offsets.npy", allow_pickle=False),
                )
            )
            ids = pq.read_table(root / "references.parquet").column("reference_id").to_pylist()
        except (ValueError, OSError, pa.ArrowException) as exc:
            raise MinHashIndexError(f"{root} holds an unreadable index file: {exc}") from exc
        n = int(meta["n_references"])
        if (
            signatures.shape != (n, stored.num_perm)
            or signatures.dtype != np.uint32
            or offsets.shape != (n + 1,)
            or len(ids) != n
            or int(offsets[-1]) != len(shingles)
            or unit_offsets.shape != (n + 1,)
            or int(unit_offsets[-1]) != len(units)
        ):
            raise MinHashIndexError(f"{root} holds arrays whose shapes disagree with index.json")
        index = cls(stored, storage_config)
        index._set_arrays(
            signatures, shingles, offsets, ids, int(meta.get("n_skipped_short", 0)), units, unit_offsets
        )
        index._content_sha256 = meta["content_sha256"]
        index._build_lsh()
        return index

    def describe(self) -> dict[str, Any]:
        """Parameters and size of the index, for reports and ``index.json``."""
        self._require_fitted()
        storage = (self.storage_config or {}).get("type", "dict")
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "params": self.params.to_dict(),
            "n_references": len(self._ids),
            "n_skipped_short": self._n_skipped_short,
            "lsh_bands": self._lsh.b,
            "lsh_rows": self._lsh.r,
            "scheme": "affine32",
            "shingle_hash": "xxh32 per unit, polynomial n-gram combine (detectors.shingles)",
            "content_sha256": self._content_sha256,
            "datasketch_version": datasketch.__version__,
            "storage": "memory" if storage == "dict" else storage,
            "match_similarity_threshold": MATCH_SIMILARITY_THRESHOLD,
            "match_containment_threshold": MATCH_CONTAINMENT_THRESHOLD,
            "match_min_shared_shingles": MATCH_MIN_SHARED_SHINGLES,
            "match_aligned_coverage": MATCH_ALIGNED_COVERAGE,
            "match_aligned_purity": MATCH_ALIGNED_PURITY,
            "match_aligned_min_run": MATCH_ALIGNED_MIN_RUN,
        }

    def _require_fitted(self) -> None:
        if not hasattr(self, "_lsh"):
            raise RuntimeError("ReferenceIndex is not fitted: call fit() or load() first")

    def __len__(self) -> int:
        return len(getattr(self, "_ids", ()))

    # ------------------------------------------------------------------ scoring
    def candidates(self, texts: Sequence[str]) -> list[set[int]]:
        """Reference rows proposed by the LSH for each text (whole text and windows)."""
        self._require_fitted()
        result: list[set[int]] = []
        for start, stop in batch_bounds(texts, 1024, max_chars=2_000_000):
            chunk = [text or "" for text in texts[start:stop]]
            result += self._candidates(*shingle_hashes(chunk, self.params.shingle, self.params.ngram))
        return result

    def _candidates(self, hashes: np.ndarray, offsets: np.ndarray) -> list[set[int]]:
        params = self.params
        n_docs = len(offsets) - 1
        counts = np.diff(offsets)
        block = params.window_block
        blocks_per_doc = -(-counts // block)
        block_starts = np.concatenate(
            [np.arange(offsets[i], offsets[i + 1], block) for i in range(n_docs) if counts[i]]
            or [np.zeros(0, dtype=np.int64)]
        )
        a, b = permutations(params.num_perm, params.seed)
        block_signatures = segment_minima(hashes, block_starts, len(block_starts), a, b)
        query_parts, owner_parts = [], []
        first = 0
        for i in range(n_docs):
            m = int(blocks_per_doc[i])
            if m == 0:
                continue
            windows = _window_signatures(block_signatures[first : first + m])
            first += m
            query_parts.append(windows)
            owner_parts.append(np.full(len(windows), i, dtype=np.int64))
        result: list[set[int]] = [set() for _ in range(n_docs)]
        if not query_parts:
            return result
        queries = np.concatenate(query_parts)
        owners = np.concatenate(owner_parts).tolist()
        for (start, end), table in zip(self._lsh.hashranges, self._lsh.hashtables, strict=True):
            keys = _band_keys(queries, start, end)
            buckets = getattr(table, "_dict", None)
            if isinstance(buckets, dict):
                # In-memory storage: one C-level set intersection finds the occupied buckets.
                occupied = buckets.keys() & set(keys)
                if occupied:
                    hits = compress(zip(owners, keys, strict=True), map(occupied.__contains__, keys))
                    for owner, key in hits:
                        result[owner].update(buckets[key])
                continue
            # Other storage (Redis): ask which buckets exist (one HMGET on the storage's key
            # hash), then fetch only those in one pipelined round trip.
            unique = list(dict.fromkeys(keys))
            client, name = getattr(table, "_redis", None), getattr(table, "_name", None)
            if client is not None and name is not None:
                unique = [key for key, where in zip(unique, client.hmget(name, unique), strict=True) if where]
            if not unique:
                continue
            fetched = {key: found for key, found in zip(unique, table.getmany(*unique), strict=True) if found}
            hits = compress(zip(owners, keys, strict=True), map(fetched.__contains__, keys))
            for owner, key in hits:
                result[owner].update(fetched[key])
        return [{int(key) for key in found} for found in result]

    def score(self, texts: Sequence[str], batch_size: int = 1024,
              exclude: Sequence[str | None] | None = None) -> MinHashScores:
        """Score ``texts`` against the references (see the module docstring).

        ``exclude`` (one text or ``None`` per document): shingles that also occur in it are not
        counted as shared. For a prompt/response document this is its prompt: a reference that
        restates or quotes the prompt ("The capital of France is Paris", the paragraph a
        "simplify this" instruction gives) is then matched only on what the document shares with
        it beyond the prompt, so another model's answer to the same prompt is not taken for a
        copy of the teacher's, while a copied answer still is. Similarity and containment keep
        their denominators (the union, the reference's size), so excluding can only lower them
        and remove matches, never add one.
        """
        self._require_fitted()
        if exclude is not None and len(exclude) != len(texts):
            raise ValueError(f"exclude has {len(exclude)} entries for {len(texts)} texts")
        n = len(texts)
        similarity = np.zeros(n, dtype=np.float32)
        containment = np.zeros(n, dtype=np.float32)
        coverage = np.zeros(n, dtype=np.float32)
        purity = np.zeros(n, dtype=np.float32)
        shared_best = np.zeros(n, dtype=np.int64)
        best_row = np.full(n, -1, dtype=np.int64)
        ngram = self.params.ngram
        for start, stop in batch_bounds(texts, batch_size, max_chars=2_000_000):
            chunk = [text or "" for text in texts[start:stop]]
            units, unit_offsets = unit_hashes(chunk, self.params.shingle)
            hashes, offsets = shingles_from_units(units, unit_offsets, ngram)
            excluded = None
            if exclude is not None:
                excluded = shingle_hashes([x or "" for x in exclude[start:stop]], self.params.shingle, ngram)
            for i, rows in enumerate(self._candidates(hashes, offsets)):
                if not rows:
                    continue
                ordered = hashes[offsets[i] : offsets[i + 1]]
                doc = np.unique(ordered)
                skip = None
                if excluded is not None:
                    skip = np.unique(excluded[0][excluded[1][i] : excluded[1][i + 1]])
                qualified = []  # (rank key, row, shared) of candidates reaching a set threshold
                for row in sorted(rows):
                    ref = self._shingles[self._offsets[row] : self._offsets[row + 1]]
                    common = np.intersect1d(doc, ref, assume_unique=True)
                    union = len(doc) + len(ref) - common.size
                    # shingles of the excluded text are not evidence of copying (denominators kept)
                    shared = int(common.size if skip is None or not skip.size
                                 else np.setdiff1d(common, skip, assume_unique=True).size)
                    if shared == 0:
                        continue
                    jaccard = shared / union
                    contained = shared / len(ref) if shared >= MATCH_MIN_SHARED_SHINGLES else 0.0
                    similarity[start + i] = max(similarity[start + i], jaccard)
                    containment[start + i] = max(containment[start + i], contained)
                    if contained >= MATCH_CONTAINMENT_THRESHOLD:
                        qualified.append(((1, contained, jaccard), row, shared))
                    elif jaccard >= MATCH_SIMILARITY_THRESHOLD:
                        qualified.append(((0, jaccard, contained), row, shared))
                qualified.sort(key=lambda item: item[0], reverse=True)
                doc_units = units[unit_offsets[i] : unit_offsets[i + 1]]
                for rank, (_, row, shared) in enumerate(qualified[:_MAX_ALIGNED_CANDIDATES]):
                    cov, pure = self._aligned(ordered, doc_units, row)
                    if rank == 0:
                        coverage[start + i], purity[start + i] = cov, pure
                    if cov >= MATCH_ALIGNED_COVERAGE and pure >= MATCH_ALIGNED_PURITY:
                        coverage[start + i], purity[start + i] = cov, pure
                        shared_best[start + i], best_row[start + i] = shared, row
                        break
        reference_id = [self._ids[row] if row >= 0 else None for row in best_row.tolist()]
        return MinHashScores(similarity, containment, reference_id, shared_best, coverage, purity)

    def _aligned(self, doc_shingles: np.ndarray, doc_units: np.ndarray, row: int) -> tuple[float, float]:
        """:func:`aligned_overlap` of a document with reference ``row``, on the stretch of the
        document between its first and last shingle shared with the reference (plus a margin),
        so a long page costs no more than the reference's size."""
        ref_shingles = self._shingles[self._offsets[row] : self._offsets[row + 1]]
        ref_units = self._units[self._unit_offsets[row] : self._unit_offsets[row + 1]]
        positions = np.flatnonzero(np.isin(doc_shingles, ref_shingles))
        if positions.size == 0:
            return 0.0, 0.0
        margin = len(ref_units) // 10 + self.params.ngram
        lo = max(int(positions[0]) - margin, 0)
        hi = min(int(positions[-1]) + self.params.ngram + margin, len(doc_units))
        return aligned_overlap(
            doc_units[lo:hi].tolist(), ref_units.tolist(), MATCH_ALIGNED_MIN_RUN, doc_length=len(doc_units)
        )

    def signatures(self) -> np.ndarray:
        """The stored reference signatures (uint32, references x num_perm)."""
        self._require_fitted()
        return self._signatures

    @property
    def reference_ids(self) -> list[str]:
        return list(self._ids)
