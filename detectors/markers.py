"""High-precision textual tells of chat-assistant output, as named regex markers.

A marker is evidence, not a verdict: a page quoting "As an AI language model, I ..." as a joke
also matches. The classifier (``detectors.classifier``) carries the statistical signal; markers
are recorded per document so a reviewer can see *why* a page looks machine-written.

Every pattern was checked against the shared dev data (``../shared/data/dev``): each one matches
real OpenAI or other-LLM responses there, and the whole set matches (almost) no human text
(``tests/test_markers.py`` prints the per-marker counts on human, OpenAI and other-LLM texts).

Names of self-identification markers start with ``self_id`` so callers can treat "the text says
it is an AI" separately from softer tells (refusals, knowledge-cutoff caveats).
Most markers are not specific to OpenAI: other assistants use the same boilerplate; only
``self_id_openai`` and ``self_id_chatgpt`` name the teacher.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["MARKERS", "Marker", "find_markers"]

# Straight or typographic apostrophe, so "I'm" and "I’m" both match.
_AP = "['\u2019]"
_I_AM = rf"I(?:{_AP}m| am)"
_DONT = rf"(?:don{_AP}t|do not)"
_CANT = rf"(?:can{_AP}t|cannot|can not|am unable to|{_AP}m unable to|am not able to|{_AP}m not able to)"


@dataclass(frozen=True)
class Marker:
    """One named tell: a compiled pattern and what it means."""

    name: str
    pattern: re.Pattern[str]
    description: str


def _marker(name: str, pattern: str, description: str) -> tuple[str, Marker]:
    return name, Marker(name, re.compile(pattern, re.IGNORECASE), description)


MARKERS: dict[str, Marker] = dict(
    [
        _marker(
            "self_id_ai_language_model",
            # "As an AI language model, I ...", "As an AI, I don't ...", "as a language model AI, I ...";
            # the trailing ", I" / " I" keeps ordinary prose about AI ("as an AI researcher") out.
            r"\bas an? (?:AI|artificial intelligence)(?: (?:language model|assistant|model|chatbot))?"
            r"(?: (?:developed|created|trained|made|built) by [\w-]+)?,? I\b"
            r"|\bas an? (?:large )?language model(?: AI)?,? I\b",
            "The text introduces itself as an AI / language model ('As an AI language model, I ...').",
        ),
        _marker(
            "self_id_i_am_an_ai",
            rf"\b{_I_AM} (?:just |only |merely )?(?:an AI|an artificial intelligence"
            r"|a (?:large )?language model|an AI (?:language model|assistant|chatbot)"
            r"|a (?:computer|AI) program)\b",
            "First-person self-identification: \"I'm an AI\", \"I am a large language model\".",
        ),
        _marker(
            "self_id_openai",
            r"\b(?:I|AI|assistant|language model|chatbot)\b[^.\n]{0,40}"
            r"\b(?:developed|created|trained|made|built) by OpenAI\b",
            "The writer says it was developed/trained by OpenAI ('As an AI developed by OpenAI').",
        ),
        _marker(
            "self_id_chatgpt",
            rf"\b{_I_AM} (?:ChatGPT|GPT-?[34](?:\.5)?)\b|\bI{_AP}m based on OpenAI{_AP}s GPT",
            "The writer names itself ChatGPT / GPT ('I am ChatGPT').",
        ),
        _marker(
            "self_id_other_assistant",
            rf"\b{_I_AM} (?:Claude|Bard|Gemini|LLaMA|Llama|Mistral|Qwen)\b,? "
            r"(?:an AI|a large language model|created|made|developed|trained)",
            "The writer names itself as a non-OpenAI assistant (Claude, Bard, Gemini, ...).",
        ),
        _marker(
            "knowledge_cutoff",
            r"\b(?:as of|up to|until|since) my (?:last|latest|most recent|final)? ?(?:knowledge |training )?"
            r"(?:update|cutoff|cut-off|training(?: data)?(?: update)?|data update|knowledge update)\b"
            r"|\bmy (?:knowledge|training data|training) (?:cutoff|cut-off)\b"
            r"|\bmy knowledge (?:is|was) (?:only )?(?:current|up to date|limited to)",
            "Knowledge-cutoff caveat ('as of my last update in October 2021').",
        ),
        _marker(
            "no_realtime_access",
            rf"\bI {_DONT} have (?:real-time|the ability to browse"
            r"|access to (?:real-time|the internet|current))"
            rf"|\bI {_CANT} browse the (?:internet|web)\b"
            rf"|\b{_CANT} provide real-time\b",
            "Assistant caveat about lacking internet / real-time access.",
        ),
        _marker(
            "no_personal_opinions",
            rf"\bI {_DONT} (?:have|hold|possess) (?:any )?(?:personal )?(?:opinions|feelings|beliefs|emotions"
            r"|preferences|experiences)\b"
            rf"|\bI {_DONT} have personal\b",
            "Assistant disclaimer of having no personal opinions/feelings/experiences.",
        ),
        _marker(
            "refusal_boilerplate",
            rf"\b(?:{_I_AM} sorry|I apologi[sz]e),? but (?:as an AI[^,.\n]{{0,30}},? )?I {_CANT}"
            r" (?:assist|help with|provide|fulfill|comply|create|generate|write|engage|answer|support"
            r"|complete|summari[sz]e|browse|access|perform|execute|display)"
            rf"|\bI {_CANT} (?:fulfill|comply with) (?:this|that|your) request\b",
            "Refusal boilerplate ('I'm sorry, but I can't assist with that').",
        ),
    ]
)


def find_markers(text: str) -> list[str]:
    """Names of the markers found in ``text``, sorted and unique (empty list for no match or ``""``)."""
    if not text:
        return []
    return sorted(name for name, marker in MARKERS.items() if marker.pattern.search(text))
