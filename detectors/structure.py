"""Detect prompt/response layouts in a document and split the prompt from the response.

A crawled page that *is* an instruction-tuning record (an Alpaca "### Instruction / ### Response"
pair, a chat transcript, a JSON message list, a Q/A pair) tells a different story from an ordinary
page that merely reads like model output: the verdict uses the layout to separate dumps of
instruction data from incidental contamination, and the MinHash detector clusters documents by
their prompt.

Kinds (``Structure.kind``):

``"json_messages"``
    The whole text is JSON: a list of ``{"role": ..., "content": ...}`` messages (also ShareGPT's
    ``{"from": ..., "value": ...}``), or an object holding such a list under ``"messages"`` /
    ``"conversations"``. The prompt is the user turns, the response the assistant turns.
``"instruction"``
    Alpaca-style headers at line starts: ``### Instruction:`` (optionally ``### Input:``) then
    ``### Response:``; the ``###`` is optional. Prompt = instruction (+ input), response = the rest.
``"chat"``
    Role-tagged turns at line starts: ``User:`` / ``Human:`` / ``<|user|>`` / ``<|im_start|>user``
    followed later by ``Assistant:`` / ``AI:`` / ``ChatGPT:`` / ``Bot:`` / ``<|assistant|>``.
    Both a user tag and an assistant tag are required, the first user tag before the first
    assistant tag. Prompt = the user turns, response = the assistant turns (joined by blank lines).
``"qa"``
    ``Q:`` / ``Question:`` at a line start followed later by ``A:`` / ``Answer:`` at a line start.
``"none"``
    Anything else (``prompt`` and ``response`` are ``None``).

Detection is checked in that order (the most specific layout first) and is purely syntactic:
it never looks at who wrote the text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

__all__ = ["KINDS", "Structure", "detect_structure"]

KINDS = ("none", "chat", "instruction", "json_messages", "qa")

# Only the first part of a huge document is searched for layout headers (they sit at the start).
_HEAD_CHARS = 20_000


@dataclass
class Structure:
    """The layout of one document; ``prompt``/``response`` are ``None`` when ``kind == "none"``."""

    kind: str
    prompt: str | None = None
    response: str | None = None


_NONE = Structure("none", None, None)

_USER_ROLES = {"user", "human", "prompter", "customer", "question"}
_ASSISTANT_ROLES = {"assistant", "ai", "gpt", "chatgpt", "bot", "model", "chatbot", "answer"}


def _clean(parts: list[str]) -> str | None:
    joined = "\n\n".join(p.strip() for p in parts if p and p.strip())
    return joined or None


# --- JSON message lists ----------------------------------------------------------------------------


def _json_messages(text: str) -> Structure | None:
    stripped = text.strip()
    if not stripped or stripped[0] not in "[{" or stripped[-1] not in "]}":
        return None
    try:
        data = json.loads(stripped)
    except (ValueError, RecursionError):
        return None
    if isinstance(data, dict):
        data = data.get("messages", data.get("conversations", data.get("conversation")))
    if not isinstance(data, list) or not data or not all(isinstance(m, dict) for m in data):
        return None
    user: list[str] = []
    assistant: list[str] = []
    for message in data:
        role = message.get("role", message.get("from", message.get("speaker")))
        content = message.get("content", message.get("value", message.get("text")))
        if not isinstance(role, str) or not isinstance(content, str):
            return None
        role = role.strip().lower()
        if role in _USER_ROLES:
            user.append(content)
        elif role in _ASSISTANT_ROLES:
            assistant.append(content)
        elif role != "system":
            return None
    if not user and not assistant:
        return None
    return Structure("json_messages", _clean(user), _clean(assistant))


# --- Alpaca-style instruction / response -----------------------------------------------------------

_SECTION = re.compile(
    r"^[ \t]*(?:#{1,4}[ \t]*)?(instruction|input|response|output)[ \t]*:[ \t]*",
    re.IGNORECASE | re.MULTILINE,
)


def _instruction(text: str) -> Structure | None:
    headers = list(_SECTION.finditer(text[:_HEAD_CHARS]))
    if not headers or headers[0].group(1).lower() != "instruction":
        return None
    response_at = next(
        (i for i, h in enumerate(headers) if h.group(1).lower() in ("response", "output")), None
    )
    if response_at is None:
        return None
    # Everything from the first response header on is the response, even if it quotes headers.
    prompt_parts = [
        text[h.end() : headers[i + 1].start()] for i, h in enumerate(headers[:response_at])
    ]
    response = text[headers[response_at].end() :]
    return Structure("instruction", _clean(prompt_parts), _clean([response]))


# --- Role-tagged chat transcripts ------------------------------------------------------------------

_USER_TAG = r"(?:user|human|prompter)"
_ASSISTANT_TAG = r"(?:assistant|ai|chatgpt|gpt|bot|chatbot|model)"
_TURN = re.compile(
    rf"^[ \t]*(?:<\|(?P<special>{_USER_TAG}|{_ASSISTANT_TAG}|system)\|>"
    rf"|<\|im_start\|>[ \t]*(?P<im>{_USER_TAG}|{_ASSISTANT_TAG}|system)"
    rf"|\[?(?P<plain>{_USER_TAG}|{_ASSISTANT_TAG})\]?[ \t]*:)[ \t]*\n?",
    re.IGNORECASE | re.MULTILINE,
)
_IM_END = re.compile(r"<\|im_end\|>|<\|end\|>|</s>")


def _role_of(match: re.Match[str]) -> str:
    role = (match.group("special") or match.group("im") or match.group("plain")).lower()
    if role == "system":
        return "system"
    return "user" if re.fullmatch(_USER_TAG, role) else "assistant"


def _chat(text: str) -> Structure | None:
    turns = list(_TURN.finditer(text))
    if not turns:
        return None
    roles = [_role_of(t) for t in turns]
    if "user" not in roles or "assistant" not in roles or roles.index("user") > roles.index("assistant"):
        return None
    user: list[str] = []
    assistant: list[str] = []
    for i, turn in enumerate(turns):
        end = turns[i + 1].start() if i + 1 < len(turns) else len(text)
        content = _IM_END.sub("", text[turn.end() : end])
        if roles[i] == "user":
            user.append(content)
        elif roles[i] == "assistant":
            assistant.append(content)
    return Structure("chat", _clean(user), _clean(assistant))


# --- Q/A pairs -------------------------------------------------------------------------------------

_QA = re.compile(r"^[ \t]*(?:(?P<q>Q|Question)|(?P<a>A|Answer))[ \t]*:[ \t]*", re.MULTILINE)


def _qa(text: str) -> Structure | None:
    marks = list(_QA.finditer(text[:_HEAD_CHARS]))
    first_q = next((i for i, m in enumerate(marks) if m.group("q")), None)
    if first_q is None:
        return None
    first_a = next((i for i in range(first_q + 1, len(marks)) if marks[i].group("a")), None)
    if first_a is None:
        return None
    questions: list[str] = []
    answers: list[str] = []
    for i in range(first_q, len(marks)):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        (questions if marks[i].group("q") else answers).append(text[marks[i].end() : end])
    return Structure("qa", _clean(questions), _clean(answers))


def detect_structure(text: str) -> Structure:
    """The layout of ``text`` and, where there is one, its prompt and response parts.

    Never raises on ordinary strings; non-strings and empty text give kind ``"none"``.
    """
    if not isinstance(text, str) or not text.strip():
        return _NONE
    for detector in (_json_messages, _instruction, _chat, _qa):
        found = detector(text)
        if found is not None:
            return found
    return Structure("none", None, None)
