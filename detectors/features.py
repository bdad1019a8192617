"""Feature extraction for the teacher classifier: hashed n-grams and a stylometric block.

Two stateless scikit-learn transformers (nothing is learned in ``fit``, so the features of a text
never depend on the training set and a model file holds no vocabulary):

* :class:`NgramHasher` -- word 1-2-grams and character n-grams hashed into a fixed-width sparse
  matrix (scikit-learn ``HashingVectorizer``), with sublinear term frequency and l2 normalisation
  per block. Raw counts are exposed too (:meth:`NgramHasher.counts`) because counts of adjacent
  paragraph windows add up to (almost exactly) the counts of the whole document: the classifier
  vectorises each window once and gets the document's vector by summing, instead of transforming
  every character twice.
* :class:`StylometricFeatures` -- a small dense block of style rates: sentence-length rhythm,
  punctuation and markdown habits, paragraphing, vocabulary richness, and the rates of discourse
  markers, hedges, politeness formulas and summary phrases typical of chat assistants.

``FEATURE_VERSION`` names the exact feature definition. A model trained with another version is
refused at load time, because the same text would map to different columns.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.preprocessing import normalize

__all__ = [
    "FEATURE_VERSION",
    "STYLE_FEATURE_NAMES",
    "NgramHasher",
    "StylometricFeatures",
    "check_texts",
    "stylometric_matrix",
]

FEATURE_VERSION = "ngram-style-1"


def check_texts(texts: object, what: str = "texts") -> list[str]:
    """``texts`` as a list of str; a clear ``TypeError`` for a bare string or a non-text item."""
    if isinstance(texts, str | bytes):
        raise TypeError(f"{what} must be a sequence of strings, not a single {type(texts).__name__}")
    if not isinstance(texts, Iterable):
        raise TypeError(f"{what} must be a sequence of strings, got {type(texts).__name__}")
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise TypeError(
                f"{what}[{i}] is {type(text).__name__}, not str: the text column must hold strings "
                "(is a non-text column selected?)"
            )
    return out


# --- hashed n-grams --------------------------------------------------------------------------------


class NgramHasher(TransformerMixin, BaseEstimator):
    """Hashed word and character n-grams, sublinear TF, each block l2-normalised.

    ``char_ngram_range=None`` drops the character block (word n-grams only).
    """

    def __init__(
        self,
        word_ngram_range: tuple[int, int] = (1, 2),
        char_ngram_range: tuple[int, int] | None = (3, 5),
        n_features_word: int = 2**20,
        n_features_char: int = 2**20,
        char_analyzer: str = "char",
    ) -> None:
        self.word_ngram_range = word_ngram_range
        self.char_ngram_range = char_ngram_range
        self.n_features_word = n_features_word
        self.n_features_char = n_features_char
        self.char_analyzer = char_analyzer

    def _vectorizers(self) -> list[HashingVectorizer]:
        common = dict(alternate_sign=False, norm=None, dtype=np.float32)
        out = [
            HashingVectorizer(
                analyzer="word",
                ngram_range=tuple(self.word_ngram_range),
                n_features=self.n_features_word,
                lowercase=True,
                # Words plus single punctuation marks, so "However," and "However" differ.
                token_pattern=r"(?u)\b\w+\b|[^\w\s]",
                **common,
            )
        ]
        if self.char_ngram_range is not None:
            out.append(
                HashingVectorizer(
                    analyzer=self.char_analyzer,
                    ngram_range=tuple(self.char_ngram_range),
                    n_features=self.n_features_char,
                    lowercase=False,
                    **common,
                )
            )
        return out

    def fit(self, texts: Sequence[str], y: object = None) -> NgramHasher:
        check_texts(texts)
        self.n_blocks_ = len(self._vectorizers())
        return self

    def counts(self, texts: Sequence[str]) -> list[sp.csr_matrix]:
        """Raw n-gram counts, one CSR matrix per block (additive over concatenated windows)."""
        return [v.transform(texts).tocsr() for v in self._vectorizers()]

    def weigh(self, blocks: Sequence[sp.csr_matrix]) -> sp.csr_matrix:
        """Counts -> the model's features: log1p term frequency, l2 norm per block, stacked."""
        weighted = []
        for block in blocks:
            block = block.astype(np.float32, copy=True)
            np.log1p(block.data, out=block.data)
            weighted.append(normalize(block, copy=False))
        return sp.hstack(weighted, format="csr")

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        return self.weigh(self.counts(check_texts(texts)))


# --- stylometric block -----------------------------------------------------------------------------

_WORD = re.compile(r"\w+")
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?\u3002])\s+|\n+")
_LIST_LINE = re.compile(r"^[ \t]*(?:[-*\u2022+]|\d{1,2}[.)])[ \t]+\S", re.MULTILINE)
_HEADING_LINE = re.compile(r"^[ \t]*(?:#{1,6}[ \t]+\S.*|[^\n.!?]{2,60}:)[ \t]*$", re.MULTILINE)
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
_CONTRACTION = re.compile(r"\w['\u2019](?:t|s|m|re|ve|ll|d)\b", re.IGNORECASE)

# Phrase lists, matched on lower-cased \w+ tokens (so "it's" is the two tokens "it", "s").
_DISCOURSE = (
    "however",
    "additionally",
    "furthermore",
    "moreover",
    "overall",
    "ultimately",
    "consequently",
    "therefore",
    "thus",
    "in conclusion",
    "in summary",
    "to summarize",
    "to summarise",
    "in addition",
    "firstly",
    "secondly",
    "lastly",
    "finally",
    "on the other hand",
    "as a result",
    "for example",
    "for instance",
    "it is important to",
    "it s important to",
    "it is worth noting",
    "it s worth noting",
    "it is essential",
    "it s essential",
    "it is crucial",
    "it s crucial",
    "keep in mind",
    "in today s",
    "plays a crucial role",
    "plays a vital role",
    "plays a significant role",
    "plays a key role",
)
_ASSISTANT_VOCAB = (
    "delve",
    "delves",
    "delving",
    "crucial",
    "essential",
    "various",
    "ensure",
    "ensuring",
    "enhance",
    "enhancing",
    "comprehensive",
    "significant",
    "significantly",
    "potential",
    "valuable",
    "vital",
    "foster",
    "fostering",
    "utilize",
    "utilizing",
    "robust",
    "seamless",
    "navigate",
    "landscape",
    "realm",
    "tapestry",
    "pivotal",
    "intricate",
    "invaluable",
    "showcase",
    "key",
    "effectively",
    "efficiently",
    "specific",
    "unique",
    "overall",
    "additionally",
    "furthermore",
    "moreover",
)
_HEDGE = (
    "may",
    "might",
    "could",
    "can be",
    "generally",
    "typically",
    "often",
    "usually",
    "likely",
    "possibly",
    "perhaps",
    "potentially",
    "some",
    "tend to",
    "depending on",
    "depends on",
    "it is possible",
    "it s possible",
)
_POLITE = (
    "please",
    "thank you",
    "thanks",
    "sorry",
    "glad",
    "happy to",
    "hope this helps",
    "feel free",
    "let me know",
    "certainly",
    "sure",
    "of course",
    "absolutely",
    "great question",
    "i hope",
    "here are",
    "here is",
    "here s",
)
_FIRST_PERSON = ("i", "me", "my", "mine")
_SECOND_PERSON = ("you", "your", "yours")


def _phrase_sets(phrases: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(one- and two-word phrases, longer phrases padded with spaces for ``str.count``)."""
    short = tuple(p for p in phrases if len(p.split()) <= 2)
    long = tuple(f" {p} " for p in phrases if len(p.split()) > 2)
    return short, long


_PHRASE_GROUPS = tuple(
    _phrase_sets(group)
    for group in (_DISCOURSE, _ASSISTANT_VOCAB, _HEDGE, _POLITE, _FIRST_PERSON, _SECOND_PERSON)
)


def _phrase_counts(tokens: list[str]) -> list[int]:
    """Occurrences of each phrase group's phrases in the token list."""
    grams = Counter(tokens)
    grams.update(a + " " + b for a, b in zip(tokens, tokens[1:], strict=False))
    joined = " " + " ".join(tokens) + " "
    return [
        sum(grams[p] for p in short) + sum(joined.count(p) for p in long) for short, long in _PHRASE_GROUPS
    ]


_LETTER = re.compile(r"[^\W\d_]")
_UPPER = re.compile(r"[A-Z\u00c0-\u00de\u0410-\u042f]")
_DIGIT = re.compile(r"\d")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_FIRST_PERSON = re.compile(r"\b(?:i|me|my|mine|i'm|i've|i'd)\b", re.IGNORECASE)
_SECOND_PERSON = re.compile(r"\b(?:you|your|yours|you're|you've)\b", re.IGNORECASE)

_PUNCT = {
    "comma": ",",
    "period": ".",
    "semicolon": ";",
    "colon": ":",
    "exclamation": "!",
    "question": "?",
    "double_quote": '"',
    "apostrophe": "'",
    "open_paren": "(",
    "hyphen": "-",
    "em_dash": "\u2014",
    "curly_quote": "\u2019",
    "asterisk": "*",
    "hash": "#",
    "backtick": "`",
    "ellipsis": "...",
}

STYLE_FEATURE_NAMES: tuple[str, ...] = (
    "log_chars",
    "log_words",
    "sentence_len_mean",
    "sentence_len_cv",
    "short_sentence_share",
    "long_sentence_share",
    "word_len_mean",
    "type_token_ratio",
    *(f"punct_{name}" for name in _PUNCT),
    "paragraphs_per_kchar",
    "lines_per_kchar",
    "list_line_share",
    "heading_line_share",
    "bold_rate",
    "uppercase_share",
    "digit_share",
    "non_ascii_share",
    "discourse_rate",
    "assistant_vocab_rate",
    "hedge_rate",
    "polite_rate",
    "first_person_rate",
    "second_person_rate",
    "contraction_rate",
    "lowercase_sentence_start_share",
    "space_before_punct_rate",
    "ends_with_punct",
)


def _style_row(text: str) -> list[float]:
    n_chars = len(text)
    kchar = max(n_chars, 1) / 1000.0
    words = _WORD.findall(text.lower())
    n_words = len(words)
    per_word = 1.0 / max(n_words, 1)
    sentences = [s for s in _SENTENCE_SPLIT.split(text) if s.strip()]
    lengths = np.fromiter((len(s.split()) for s in sentences), dtype=np.float64, count=len(sentences))
    if lengths.size:
        mean_len = float(lengths.mean())
        cv_len = float(lengths.std() / mean_len) if mean_len > 0 else 0.0
        short_share = float((lengths < 8).mean())
        long_share = float((lengths > 35).mean())
        lower_start = sum(1 for s in sentences if s.lstrip()[:1].islower()) / len(sentences)
    else:
        mean_len = cv_len = short_share = long_share = lower_start = 0.0
    phrase_counts = _phrase_counts(words)
    head = words[:300]
    ttr = len(set(head)) / len(head) if head else 0.0
    lines = [line for line in text.split("\n") if line.strip()]
    n_lines = max(len(lines), 1)
    letters = len(_LETTER.findall(text)) or 1
    row = [
        math.log1p(n_chars),
        math.log1p(n_words),
        min(mean_len, 200.0) / 50.0,
        cv_len,
        short_share,
        long_share,
        (sum(len(w) for w in words) * per_word) / 10.0,
        ttr,
    ]
    row.extend(text.count(mark) / kchar / 10.0 for mark in _PUNCT.values())
    row.extend(
        [
            (len(_BLANK_LINE.findall(text)) + 1) / kchar,
            n_lines / kchar / 10.0,
            len(_LIST_LINE.findall(text)) / n_lines,
            len(_HEADING_LINE.findall(text)) / n_lines,
            text.count("**") / kchar,
            len(_UPPER.findall(text)) / letters,
            len(_DIGIT.findall(text)) / max(n_chars, 1),
            len(_NON_ASCII.findall(text)) / max(n_chars, 1),
            *(count * per_word * 10.0 for count in phrase_counts),
            len(_CONTRACTION.findall(text)) * per_word * 10.0,
            lower_start,
            (text.count(" ,") + text.count(" .")) / kchar,
            1.0 if text.rstrip()[-1:] in {".", "!", "?", '"', ")", "\u3002"} else 0.0,
        ]
    )
    return row


def stylometric_matrix(texts: Sequence[str]) -> np.ndarray:
    """Dense ``(n, len(STYLE_FEATURE_NAMES))`` float32 matrix of style rates (all finite)."""
    out = np.zeros((len(texts), len(STYLE_FEATURE_NAMES)), dtype=np.float32)
    for i, text in enumerate(texts):
        if text:
            out[i] = _style_row(text)
    return out


class StylometricFeatures(TransformerMixin, BaseEstimator):
    """Stateless transformer wrapping :func:`stylometric_matrix`."""

    def fit(self, texts: Sequence[str], y: object = None) -> StylometricFeatures:
        check_texts(texts)
        self.n_features_out_ = len(STYLE_FEATURE_NAMES)
        return self

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        return stylometric_matrix(check_texts(texts))

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        return np.asarray(STYLE_FEATURE_NAMES, dtype=object)
