"""Markers on real dev texts: recall on real assistant boilerplate, precision on human text."""

from __future__ import annotations

from collections import Counter

import pytest

from detectors.markers import MARKERS, find_markers

# Short excerpts of real responses in ../shared/data/dev (record id in the comment), one per marker.
REAL_EXCERPTS = [
    # ae:207:gpt4_0613 (openai)
    ("As an AI developed by OpenAI, I don't have real-time capabilities or the ability to predict",
     {"self_id_ai_language_model", "self_id_openai", "no_realtime_access"}),
    # ae:39:Qwen1.5-72B-Chat (other_llm)
    ("As an AI language model, I cannot make a decision for you, but I c", {"self_id_ai_language_model"}),
    # ae:337:gpt4_0613 (openai)
    ("I'm an AI and I don't have real-time access to da", {"self_id_i_am_an_ai", "no_realtime_access"}),
    # ae:423:gpt4_0613 (openai)
    ("Yes, I'm based on OpenAI's GPT-3 model, the same model that powers ChatGPT.", {"self_id_chatgpt"}),
    # ae:389:claude-2 (other_llm)
    ("Greetings! I'm Claude, an AI assistant created by Anthropic. I don't", {"self_id_other_assistant",}),
    # ae:51:gpt4_0613 (openai)
    ("As of my last update, Bethesda has not yet announced a speci", {"knowledge_cutoff"}),
    # ae:179:gpt4_0613 (openai)
    ("As a digital assistant, I do not possess personal emotions or experiences.", {"no_personal_opinions"}),
    # ae:296:gpt-3.5-turbo-0613 (openai)
    ("I'm sorry, but I cannot assist with that question. If you have any oth", {"refusal_boilerplate"}),
    # ae:294:llama-2-70b-chat-hf (other_llm), typographic apostrophe
    ("\u2018I\u2019m sorry, but I cannot provide you with a cookie. I am a text-based AI",
     {"refusal_boilerplate"}),
]

# Human sentences (from dev human texts) that share words with the markers but are not tells.
HUMAN_LOOKALIKES = [
    "I'm sorry, but he just wasn't nice. Not that bouncers need to be cuddly, but dang.",  # yelp review
    "I'm sorry, but he is set in his ways.",  # l2r fiction
    "co-founder of Neuralink and OpenAI; president of the Musk Foundation",  # self_instruct seed task
    "As an AI researcher I have published on planning.",
]


@pytest.mark.parametrize(("text", "expected"), REAL_EXCERPTS)
def test_marker_fires_on_real_excerpt(text: str, expected: set[str]) -> None:
    found = set(find_markers(text))
    assert expected <= found, (text, found)


@pytest.mark.parametrize("text", HUMAN_LOOKALIKES)
def test_no_marker_on_human_lookalike(text: str) -> None:
    assert find_markers(text) == []


def test_find_markers_sorted_unique_and_empty() -> None:
    text = REAL_EXCERPTS[0][0] + " " + REAL_EXCERPTS[0][0]
    names = find_markers(text)
    assert names == sorted(set(names)) and len(names) == 3
    assert find_markers("") == []


def test_self_id_names_mark_exactly_the_texts_that_say_they_are_an_ai() -> None:
    """Detect and the report count a document as self-identifying when a marker name starts with
    ``self_id``: every real excerpt saying it is an AI gets one, the softer tells none."""
    says_it_is_an_ai = [text for text, _ in REAL_EXCERPTS[:5]]
    softer = [text for text, _ in REAL_EXCERPTS[5:]] + [
        "I'm sorry, but I cannot help with that request.",
        "As of my last knowledge update in September 2021, the law had not changed.",
    ]
    for text in says_it_is_an_ai:
        assert any(name.startswith("self_id") for name in find_markers(text)), text
    for text in softer:
        names = find_markers(text)
        assert names and not any(name.startswith("self_id") for name in names), (text, names)
    # only the OpenAI names point at the teacher: another assistant's self-identification does not
    claude = find_markers("Greetings! I'm Claude, an AI assistant created by Anthropic.")
    assert "self_id_other_assistant" in claude and not {"self_id_openai", "self_id_chatgpt"} & set(claude)


@pytest.mark.shared_data
def test_marker_counts_on_dev_data(dev_openai, dev_human, dev_other_llm, capsys) -> None:
    """Every marker hits real LLM text; the set hits (almost) no human text. Counts are printed."""
    counts: dict[str, Counter] = {}
    for label, records in (("human", dev_human), ("openai", dev_openai), ("other_llm", dev_other_llm)):
        counter: Counter = Counter()
        docs_hit = 0
        for record in records:
            names = find_markers(record["text"])
            counter.update(names)
            docs_hit += bool(names)
        counter["<any>"] = docs_hit
        counts[label] = counter
    with capsys.disabled():
        print("\nmarker hits on dev texts (human / openai / other_llm):")
        for name in [*MARKERS, "<any>"]:
            print(f"  {name:28s} {counts['human'][name]:5d} {counts['openai'][name]:6d} "
                  f"{counts['other_llm'][name]:6d}")
    for name in MARKERS:
        assert counts["openai"][name] + counts["other_llm"][name] > 0, f"{name} matches no real LLM text"
    # Precision: markers are high-precision evidence; at most 0.1% of human texts may match any.
    assert counts["human"]["<any>"] <= 0.001 * len(dev_human), counts["human"]
    # And they find a real share of assistant boilerplate in the OpenAI texts.
    assert counts["openai"]["<any>"] >= 20
