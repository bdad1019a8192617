"""Which characters are words on their own: the one definition the detectors share.

Chinese and Japanese are written without spaces, so a run of word characters there is a clause, not
a word. Both the MinHash shingles (:mod:`detectors.shingles`) and the classifier's word n-grams and
word counts (:mod:`detectors.features`) take each character of these ranges as one word unit.
Halfwidth katakana (U+FF66-FF9F) and the CJK extensions beyond the Basic Multilingual Plane are not
included: they are rare in crawls, and adding them changes both detectors' units.
"""

from __future__ import annotations

#: Inclusive code point ranges: hiragana and katakana, CJK extension A, CJK unified ideographs,
#: CJK compatibility ideographs.
CJK_RANGES: tuple[tuple[int, int], ...] = (
    (0x3040, 0x30FF),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
)
#: The same ranges as the body of a regular-expression character class.
CJK_CHARACTER_CLASS = "".join(f"{chr(low)}-{chr(high)}" for low, high in CJK_RANGES)
