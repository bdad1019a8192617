"""Template clusters inside a corpus: MinHash LSH over the corpus itself, connected components.

Every document is reduced to a *clustering text*: its prompt when one is given (prompt/response
documents made from one template share most of the prompt, whatever the answers say), else
its own text. Prompt and text keys live in separate namespaces, so a prompt never joins a
document because it resembles that document's body.

Signatures are computed in chunks; each chunk's LSH band keys (``bands x rows`` from datasketch's
optimiser for ``params.cluster_threshold``, one 64-bit hash per band) are appended to one file
per band in ``work_dir`` (the band-bucket approach of datatrove's MinHash deduplication), and the
signatures to a disk-backed array there. Then, one band at a time, the band file is sorted by
key; each document sharing a bucket is linked to the bucket's first document *if their MinHash
estimate of Jaccard similarity reaches* ``cluster_threshold`` (this removes the LSH's chance
collisions), and the links are merged into the running connected components (scipy). Peak
memory is O(documents) (one band's keys plus the component labels), never O(documents x num_perm).

Clustering texts without shingles use ``short="whole"``: a text of 1..ngram-1 units is one
shingle, so identical short prompts ("Translate to French:") cluster; a text with no units at
all is a singleton. ``cluster_id`` is the row position of the cluster's first document, so a
singleton's id is its own position and ids are stable for a stable corpus order.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from datasketch import MinHashLSH
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from detectors.shingles import batch_bounds, shingle_hashes, signatures_from_hashes

if TYPE_CHECKING:
    from detectors.minhash import MinHashParams

_CHUNK = 8192
_RECORD = np.dtype([("key", "<u8"), ("doc", "<i8")])
_FNV_PRIME = np.uint64(0x100000001B3)
_NAMESPACE = {False: np.uint64(0xCBF29CE484222325), True: np.uint64(0x84222325CBF29CE4)}


def _fmix64(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


def band_hashes(signatures: np.ndarray, bands: int, rows: int, is_prompt: np.ndarray) -> np.ndarray:
    """One 64-bit key per (document, band): a hash of the band's values and the text's namespace."""
    sig = signatures.astype(np.uint64)
    out = np.empty((len(signatures), bands), dtype=np.uint64)
    seed = np.where(is_prompt, _NAMESPACE[True], _NAMESPACE[False])
    for band in range(bands):
        h = seed.copy()
        for col in range(band * rows, (band + 1) * rows):
            h = (h ^ sig[:, col]) * _FNV_PRIME
        out[:, band] = _fmix64(h ^ np.uint64(band))
    return out


def _lsh_shape(params: MinHashParams) -> tuple[int, int]:
    lsh = MinHashLSH(threshold=params.cluster_threshold, num_perm=params.num_perm)
    return lsh.b, lsh.r


class TemplateClusterer:
    """Streaming form of :func:`cluster_documents`: :meth:`add` batches in corpus order, then :meth:`finish`.

    Only signatures (on disk) and band keys (one file per band, on disk) are kept between
    batches, so a corpus never has to be held in memory. Use it as a context manager; the
    scratch directory under ``work_dir`` is removed on exit.
    """

    def __init__(self, params: MinHashParams, work_dir: Path) -> None:
        self.params = params
        self.work_dir = Path(work_dir)
        self.n_documents = 0
        self._scratch: Path | None = None
        self._handles: list = []
        self._signature_handle = None

    def __enter__(self) -> TemplateClusterer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _open(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._scratch = Path(tempfile.mkdtemp(prefix="minhash-clusters-", dir=self.work_dir))
        self._bands, self._rows = _lsh_shape(self.params)
        self._band_paths = [self._scratch / f"band_{band:03d}.bin" for band in range(self._bands)]
        self._handles = [path.open("wb") for path in self._band_paths]
        self._signature_handle = (self._scratch / "signatures.u32").open("wb")

    def add(self, texts: Sequence[str], prompts: Sequence[str | None] | None = None) -> None:
        """Add the next documents (``prompts[i]``, when not blank, is the clustering text)."""
        if prompts is not None and len(prompts) != len(texts):
            raise ValueError("texts and prompts must have the same length")
        if self._scratch is None:
            self._open()
        params = self.params
        for start, stop in batch_bounds(texts, _CHUNK):
            keys_text, is_prompt = [], np.zeros(stop - start, dtype=bool)
            for i in range(start, stop):
                prompt = prompts[i] if prompts is not None else None
                if prompt is not None and prompt.strip():
                    keys_text.append(prompt)
                    is_prompt[i - start] = True
                else:
                    keys_text.append(texts[i] or "")
            hashes, offsets = shingle_hashes(keys_text, params.shingle, params.ngram, short="whole")
            has_shingles = np.diff(offsets) > 0
            signatures = np.zeros((stop - start, params.num_perm), dtype=np.uint32)
            if has_shingles.any():
                signatures = np.asarray(
                    signatures_from_hashes(hashes, offsets, params.num_perm, params.seed), dtype=np.uint32
                )
                keys = band_hashes(signatures[has_shingles], self._bands, self._rows, is_prompt[has_shingles])
                record = np.empty(int(has_shingles.sum()), dtype=_RECORD)
                record["doc"] = np.flatnonzero(has_shingles).astype(np.int64) + self.n_documents + start
                for band, handle in enumerate(self._handles):
                    record["key"] = keys[:, band]
                    record.tofile(handle)
            # rows without shingles are stored too (never compared: they have no band keys)
            signatures.tofile(self._signature_handle)
        self.n_documents += len(texts)

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """``(cluster_id, cluster_size)`` int64 arrays for every document added, in order."""
        n = self.n_documents
        representative = np.arange(n, dtype=np.int64)
        if self._scratch is not None and n:
            for handle in self._handles:
                handle.close()
            self._signature_handle.close()
            stored = np.memmap(
                self._scratch / "signatures.u32", dtype=np.uint32, mode="r", shape=(n, self.params.num_perm)
            )
            for path in self._band_paths:
                representative = _merge_band(path, representative, stored, self.params.cluster_threshold)
                path.unlink()
            del stored
        self.close()
        sizes = np.bincount(representative, minlength=n)
        return representative, sizes[representative].astype(np.int64)

    def close(self) -> None:
        for handle in self._handles:
            handle.close()
        if self._signature_handle is not None:
            self._signature_handle.close()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None


def cluster_documents(
    doc_ids: Sequence[str],
    texts: Sequence[str],
    prompts: Sequence[str | None] | None,
    params: MinHashParams,
    work_dir: Path,
) -> tuple[np.ndarray, np.ndarray]:
    """Cluster near-duplicate documents (or prompts); returns ``(cluster_id, cluster_size)`` int64 arrays.

    ``prompts[i]``, when given and not blank, replaces ``texts[i]`` as the clustering text.
    Two documents are linked when they share an LSH bucket and their estimated Jaccard similarity
    reaches ``params.cluster_threshold``; clusters are the connected components of the links.
    For a corpus too large to hold in memory, feed :class:`TemplateClusterer` batch by batch.
    """
    if len(doc_ids) != len(texts) or (prompts is not None and len(prompts) != len(texts)):
        raise ValueError("doc_ids, texts and prompts must have the same length")
    with TemplateClusterer(params, work_dir) as clusterer:
        clusterer.add(texts, prompts)
        return clusterer.finish()


def _similar_enough(
    signatures: np.ndarray, left: np.ndarray, right: np.ndarray, threshold: float
) -> np.ndarray:
    """MinHash estimate of Jaccard(left[i], right[i]) >= threshold, in bounded slices."""
    keep = np.empty(len(left), dtype=bool)
    for start in range(0, len(left), 65_536):
        a = signatures[left[start : start + 65_536]]
        b = signatures[right[start : start + 65_536]]
        keep[start : start + 65_536] = (a == b).mean(axis=1) >= threshold
    return keep


def _merge_band(
    path: Path, representative: np.ndarray, signatures: np.ndarray, threshold: float
) -> np.ndarray:
    """Link similar documents sharing a bucket in one band file; returns the new smallest-member labels."""
    records = np.fromfile(path, dtype=_RECORD)
    if len(records) < 2:
        return representative
    order = np.argsort(records["key"], kind="stable")
    keys = records["key"][order]
    docs = records["doc"][order]
    run_start = np.concatenate(([True], keys[1:] != keys[:-1]))
    run_id = np.cumsum(run_start) - 1
    first_doc = docs[run_start][run_id]
    linked = np.flatnonzero(docs != first_doc)
    linked = linked[_similar_enough(signatures, first_doc[linked], docs[linked], threshold)]
    if not len(linked):
        return representative
    n = len(representative)
    source = np.concatenate((np.arange(n, dtype=np.int64), first_doc[linked]))
    target = np.concatenate((representative, docs[linked]))
    graph = coo_matrix((np.ones(len(source), dtype=np.int8), (source, target)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    smallest = np.full(labels.max() + 1, n, dtype=np.int64)
    np.minimum.at(smallest, labels, np.arange(n, dtype=np.int64))
    return smallest[labels]
