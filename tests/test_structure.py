"""Structure detection on real dev texts: instruction-format docs built from dev prompts and
responses round-trip; ordinary pages are "none"."""

from __future__ import annotations

import json
import random

import pytest

from detectors.structure import KINDS, Structure, detect_structure

LAYOUTS = {
    "instruction": lambda p, r: f"### Instruction:\n{p}\n\n### Response:\n{r}",
    "chat": lambda p, r: f"User: {p}\nAssistant: {r}",
    "chatml": lambda p, r: f"<|im_start|>user\n{p}<|im_end|>\n<|im_start|>assistant\n{r}<|im_end|>",
    "json_messages": lambda p, r: json.dumps(
        [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": p},
         {"role": "assistant", "content": r}]
    ),
    "qa": lambda p, r: f"Question: {p}\nAnswer: {r}",
}
EXPECTED_KIND = {"chatml": "chat"}


def _prompted(records: list[dict], n: int = 600) -> list[dict]:
    with_prompt = [r for r in records if r.get("prompt")]
    return random.Random(0).sample(with_prompt, min(n, len(with_prompt)))


@pytest.mark.shared_data
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_layout_round_trips_real_prompts(layout: str, dev_openai, dev_human, capsys) -> None:
    records = _prompted(dev_openai) + _prompted(dev_human)
    exact = 0
    for record in records:
        prompt, response = record["prompt"], record["text"]
        found = detect_structure(LAYOUTS[layout](prompt, response))
        assert found.kind == EXPECTED_KIND.get(layout, layout), (record["id"], found.kind)
        exact += found.prompt == prompt.strip() and found.response == response.strip()
    with capsys.disabled():
        print(f"\nstructure {layout}: {exact}/{len(records)} prompt+response split exactly")
    # A prompt that itself contains role tags / headers may split differently; allow 2%.
    assert exact >= 0.98 * len(records)


@pytest.mark.shared_data
def test_ordinary_pages_are_none(dev_human, dev_openai, dev_other_llm, capsys) -> None:
    """Plain dev texts (responses only, no prompt layout) are almost all kind 'none'."""
    found = {}
    for label, records in (("human", dev_human), ("openai", dev_openai), ("other_llm", dev_other_llm)):
        kinds = [detect_structure(r["text"]).kind for r in records]
        found[label] = sum(k != "none" for k in kinds)
        assert found[label] <= 0.005 * len(records), (label, found[label])
    with capsys.disabled():
        print(f"\nstructure != none on plain dev texts: {found}")


def test_alpaca_with_input_and_json_variants() -> None:
    text = "### Instruction:\nTranslate.\n\n### Input:\nBonjour\n\n### Response:\nHello"
    assert detect_structure(text) == Structure("instruction", "Translate.\n\nBonjour", "Hello")
    turns = [{"from": "human", "value": "Hi?"}, {"from": "gpt", "value": "Hey."}]
    sharegpt = json.dumps({"conversations": turns})
    assert detect_structure(sharegpt) == Structure("json_messages", "Hi?", "Hey.")
    multi = "Human: one\nAI: two\nHuman: three\nAI: four"
    assert detect_structure(multi) == Structure("chat", "one\n\nthree", "two\n\nfour")
    assert detect_structure("Q: why?\nA: because.") == Structure("qa", "why?", "because.")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "[1, 2, 3]",
        '{"role": "user"}',
        "Assistant: hello\nUser: hi",  # assistant before user: not a prompt/response layout
        "A. First option\nB. Second option",
        "Our user: guide explains the settings.",
    ],
)
def test_not_a_layout(text: str) -> None:
    found = detect_structure(text)
    assert found.kind == "none" and found.prompt is None and found.response is None


def test_non_string_is_none() -> None:
    assert detect_structure(None).kind == "none"  # type: ignore[arg-type]
    assert set(KINDS) == {"none", "chat", "instruction", "json_messages", "qa"}
