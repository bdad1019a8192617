"""Bit-identity check for scoring speed work: save, then compare, everything scoring produces.

    python -m bench.check_scores_identical save  DIR   # train a small model, score, write DIR/*.npz
    python -m bench.check_scores_identical check DIR   # score with this tree's code, compare

The model (300 dev documents per class, as ``bench_classifier --speed-only``) is trained once by
``save`` and stored in DIR, so ``check`` times and compares scoring only. Scored: 1,000 2 KB
documents (the speed benchmark's) and 1,000 dev texts of every length as they are (short,
unassessable, CJK ...). Compared with max abs diff 0: every ``score_documents`` column, every
field of ``segment_scores`` except ``doc_teacher`` (a column of ``doc_proba``) and ``n``, and the
rows each stage 2 receives (so a change HGB's binning would hide still shows).
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from bench.bench_classifier import _load, _subsample, _two_kb_docs
from detectors.classifier import load_model, segment_scores, train_model


def _texts() -> list[str]:
    teacher, human, other = _load("openai"), _load("human"), _load("other_llm")
    docs = _two_kb_docs(teacher + human, 1000)
    raw = [r["text"] for r in random.Random(5).sample(teacher + human + other, 1000)]
    return docs + raw + ["", "  ", "hi", "短い"]


def _outputs(model_dir: Path, texts: list[str]) -> dict[str, np.ndarray]:
    model = load_model(model_dir)
    clf = model.classifier
    seen: dict[str, list[np.ndarray]] = {"stage2_in": [], "stage2_window_in": []}
    for name, key in (("stage2_", "stage2_in"), ("stage2_window_", "stage2_window_in")):
        stage = getattr(clf, name)
        original = stage.predict_proba

        def record(x: np.ndarray, original=original, key=key) -> np.ndarray:
            seen[key].append(np.array(x, copy=True))
            return original(x)

        stage.predict_proba = record
    out = {f"score_{k}": v for k, v in model.score_documents(texts, batch_size=512).items()}
    scored = segment_scores(clf, texts)
    for field in ("doc_proba", "assessable", "owner", "kind", "start", "end", "teacher", "doc_chars"):
        out[f"segments_{field}"] = np.asarray(getattr(scored, field))
    for key, parts in seen.items():
        out[key] = np.concatenate(parts)
    return out


def main() -> None:
    mode, folder = sys.argv[1], Path(sys.argv[2])
    texts = _texts()
    with threadpool_limits(limits=1):
        if mode == "save":
            teacher, human, other = _load("openai"), _load("human"), _load("other_llm")
            train_model(
                _subsample(teacher, 300, 1),
                _subsample(human, 300, 2),
                _subsample(other, 300, 3),
                folder / "model",
            )
            np.savez(folder / "reference.npz", **_outputs(folder / "model", texts))
            print(f"saved {folder / 'reference.npz'}")
            return
        reference = np.load(folder / "reference.npz")
        current = _outputs(folder / "model", texts)
    failed = False
    for key in reference.files:
        old, new = reference[key], current[key]
        same_shape = old.shape == new.shape and old.dtype == new.dtype
        diff = (
            float(np.max(np.abs(old.astype(np.float64) - new.astype(np.float64))))
            if same_shape and old.size
            else 0.0
        )
        ok = same_shape and diff == 0.0 and np.array_equal(old, new, equal_nan=True)
        failed |= not ok
        print(f"{'ok  ' if ok else 'FAIL'} {key}: shape {new.shape} {new.dtype}, max abs diff {diff}")
    print("IDENTICAL" if not failed else "DIFFERENT")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
