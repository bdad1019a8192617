"""Write the synthetic demo data under ``sample_data/`` (deterministic: same bytes every run).

Every sentence here comes from small grammars written for this project; no text is copied
from anywhere. The data stands in for what an auditor would hold:

* ``crawl/web-2024.warc.gz``: a crawl of several made-up sites (a news site, a forum, two
  blogs, and ``qa-dump.example``, a site of templated question/answer pages whose answers are
  teacher-style). Some blog posts embed a teacher answer inside a human post. The WARC also
  holds a ``warcinfo`` record, ``request`` records and a non-HTML response, as real crawls do.
* ``crawl/shard-0001.jsonl``: a JSONL crawl shard (``url``, ``date``, ``text``), mostly human
  forum and review text with a few pasted teacher answers.
* ``teacher/teacher.jsonl``: samples standing in for a teacher model's outputs (with
  ``prompt_id`` and ``prompt``), the references for the MinHash index and the classifier.
* ``human/human.jsonl``: human-style samples for training the classifier.
* ``baseline/web-2021.warc.gz``: an older crawl of the same human sites (before the teacher
  existed), the control corpus for ``--baseline``.

Run ``python -m sample_data.generate [--out DIR]``. Files are written atomically.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import html
import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipeline.storage import atomic_write_bytes

SEED = 20260101
SAMPLE_DIR = Path(__file__).resolve().parent
N_TEACHER = 160
N_HUMAN = 160

# --------------------------------------------------------------------------------------------
# Vocabulary: topics with a task phrase, a concept and a few terms used by both styles.
# --------------------------------------------------------------------------------------------

TOPICS: list[dict] = [
    {
        "task": "start a compost pile at home",
        "concept": "composting",
        "terms": ["kitchen scraps", "dry leaves", "moisture", "the bin", "worms"],
    },
    {
        "task": "keep a sourdough starter alive",
        "concept": "wild yeast fermentation",
        "terms": ["flour", "the jar", "feeding", "bubbles", "rye"],
    },
    {
        "task": "clean and oil a bicycle chain",
        "concept": "drivetrain maintenance",
        "terms": ["degreaser", "the cassette", "chain lube", "rag", "derailleur"],
    },
    {
        "task": "build a monthly budget",
        "concept": "zero-based budgeting",
        "terms": ["rent", "groceries", "a spreadsheet", "savings", "receipts"],
    },
    {
        "task": "water houseplants properly",
        "concept": "soil moisture",
        "terms": ["drainage holes", "the pothos", "root rot", "terracotta", "the windowsill"],
    },
    {
        "task": "learn a new language as an adult",
        "concept": "spaced repetition",
        "terms": ["flashcards", "podcasts", "grammar", "a tutor", "verbs"],
    },
    {
        "task": "set up a password manager",
        "concept": "credential hygiene",
        "terms": [
            "the master password",
            "browser extension",
            "two-factor codes",
            "old accounts",
            "the vault",
        ],
    },
    {
        "task": "choose running shoes",
        "concept": "gait analysis",
        "terms": ["the heel", "cushioning", "trail", "blisters", "the store"],
    },
    {
        "task": "fix a regular sleep schedule",
        "concept": "circadian rhythm",
        "terms": ["screens", "coffee", "the alarm", "naps", "morning light"],
    },
    {
        "task": "prepare for a job interview",
        "concept": "behavioral interviewing",
        "terms": ["the recruiter", "examples", "the portfolio", "questions", "nerves"],
    },
    {
        "task": "paint a small room",
        "concept": "surface preparation",
        "terms": ["primer", "tape", "the roller", "drop cloths", "the ceiling"],
    },
    {
        "task": "brew pour-over coffee",
        "concept": "extraction",
        "terms": ["the grinder", "filters", "water temperature", "the kettle", "beans"],
    },
    {
        "task": "train a puppy to walk on a leash",
        "concept": "positive reinforcement",
        "terms": ["treats", "the harness", "the park", "squirrels", "patience"],
    },
    {
        "task": "back up family photos",
        "concept": "the 3-2-1 backup rule",
        "terms": ["an external drive", "cloud storage", "old phones", "folders", "duplicates"],
    },
    {
        "task": "plant tomatoes in containers",
        "concept": "companion planting",
        "terms": ["seedlings", "stakes", "fertilizer", "the balcony", "blossom end rot"],
    },
    {
        "task": "reduce food waste",
        "concept": "meal planning",
        "terms": ["leftovers", "the freezer", "shopping lists", "expiry dates", "soup"],
    },
    {
        "task": "write a short story",
        "concept": "narrative structure",
        "terms": ["the opening line", "characters", "dialogue", "the ending", "drafts"],
    },
    {
        "task": "speed up an old laptop",
        "concept": "resource management",
        "terms": ["startup programs", "the hard drive", "RAM", "updates", "the fan"],
    },
    {
        "task": "start running as a beginner",
        "concept": "progressive overload",
        "terms": ["intervals", "rest days", "the route", "shin splints", "a playlist"],
    },
    {
        "task": "organize a small kitchen",
        "concept": "decluttering",
        "terms": ["drawers", "spices", "the counter", "hooks", "containers"],
    },
    {
        "task": "negotiate a salary offer",
        "concept": "anchoring",
        "terms": ["market data", "the offer letter", "benefits", "the hiring manager", "a counteroffer"],
    },
    {
        "task": "take better phone photos",
        "concept": "composition",
        "terms": ["natural light", "the horizon", "portrait mode", "lenses", "editing apps"],
    },
    {
        "task": "keep chickens in a backyard",
        "concept": "flock management",
        "terms": ["the coop", "feed", "eggs", "predators", "bedding"],
    },
    {
        "task": "repair a leaking faucet",
        "concept": "cartridge replacement",
        "terms": ["the washer", "a wrench", "the shutoff valve", "drips", "plumber's tape"],
    },
]

NAMES = ["Dana", "Priya", "Tomasz", "Lena", "Marcus", "Ines", "Kofi", "Hana", "Rafael", "Jo", "Sven", "Aiko"]
TOWNS = ["Millbrook", "Easthaven", "Corran Falls", "Little Ashby", "Port Wendell", "Harlow"]
STREETS = ["Harlow Street", "Quarry Lane", "Mill Road", "the old rail bridge", "Station Square"]

SITES = {
    "news": "millbrook-herald.example",
    "forum": "tinkerers-forum.example",
    "blog_garden": "garden-notes.example",
    "blog_life": "slowmornings.example",
    "qa": "qa-dump.example",
}

# --------------------------------------------------------------------------------------------
# Teacher style: polite opener, numbered bold-headed list, hedged caveat, summary, offer.
# --------------------------------------------------------------------------------------------

T_OPENERS = [
    "Certainly! Here are some practical steps to {task}:",
    "Great question! If you want to {task}, there are a few key things to keep in mind:",
    "Of course! Learning how to {task} can be rewarding. Here is a step-by-step guide:",
    "Sure! Below is a clear overview of how to {task}:",
    "Absolutely. To {task} effectively, consider the following tips:",
]
T_ASPECTS = [
    "Start Small",
    "Be Consistent",
    "Gather the Right Tools",
    "Monitor Progress",
    "Plan Ahead",
    "Understand the Basics",
    "Avoid Common Mistakes",
    "Stay Patient",
    "Seek Feedback",
    "Keep It Simple",
]
T_POINTS = [
    "Begin with {t1} and gradually build up as you gain confidence.",
    "Make sure to check {t1} regularly, as this helps you catch problems early.",
    "Using {t1} and {t2} together can significantly improve your results.",
    "It is essential to understand how {t1} affects the overall process.",
    "Consider keeping a simple log of {t1} so you can track what works best for you.",
    "Avoid overcomplicating things; focus on {t1} before moving on to {t2}.",
    "Remember that {t1} plays a crucial role in achieving consistent outcomes.",
    "Pay close attention to {t2}, since small adjustments here can make a big difference.",
]
T_CAVEATS = [
    "It's important to note that results may vary depending on your specific situation.",
    "Keep in mind that everyone's circumstances are different, so feel free to adapt these suggestions.",
    "However, if you encounter persistent issues, it may be helpful to consult a professional.",
    "That said, there is no one-size-fits-all approach, and some experimentation may be necessary.",
]
T_SUMMARIES = [
    "In summary, {concept} is all about patience, preparation, and consistency.",
    "Overall, by following these steps, you will be well on your way to success with {concept}.",
    "In conclusion, understanding {concept} will help you {task} with confidence.",
    "By keeping these tips in mind, you can {task} in a way that is both effective and enjoyable.",
]
T_CLOSERS = [
    "I hope this helps! Let me know if you have any other questions.",
    "If you have any further questions, feel free to ask!",
    "Good luck, and enjoy the process!",
    "",
]
PROMPT_TEMPLATES = [
    "How can I {task}?",
    "What are some tips to {task}?",
    "Give me a step-by-step guide to {task}.",
    "Explain {concept} in simple terms and how it helps me {task}.",
]


def teacher_answer(rng: random.Random, topic: dict) -> str:
    task, concept, terms = topic["task"], topic["concept"], topic["terms"]
    parts = [rng.choice(T_OPENERS).format(task=task)]
    aspects = rng.sample(T_ASPECTS, rng.randint(3, 5))
    lines = []
    for i, aspect in enumerate(aspects, 1):
        t1, t2 = rng.sample(terms, 2)
        lines.append(f"{i}. **{aspect}**: {rng.choice(T_POINTS).format(t1=t1, t2=t2)}")
    parts.append("\n".join(lines))
    parts.append(rng.choice(T_CAVEATS))
    parts.append(rng.choice(T_SUMMARIES).format(concept=concept, task=task))
    closer = rng.choice(T_CLOSERS)
    if closer:
        parts.append(closer)
    return "\n\n".join(parts)


def teacher_prompt(rng: random.Random, topic: dict) -> str:
    return rng.choice(PROMPT_TEMPLATES).format(task=topic["task"], concept=topic["concept"])


# --------------------------------------------------------------------------------------------
# Human style: first person, concrete detail, asides, uneven sentences; news and forum voices.
# --------------------------------------------------------------------------------------------

H_BLOG = [
    "So I finally tried to {task} last {day}, after putting it off since {month}.",
    "Quick update from the {place}: {t1} is still a disaster, but a slightly smaller one.",
    "My neighbour {name} swears by {t1}. I was skeptical. I'm still a bit skeptical, honestly.",
    "First attempt went sideways within about ten minutes because I forgot {t1} entirely.",
    "The trick nobody mentioned? {t1_cap}. Took me {n} tries to work that out.",
    "Anyway, {t2} cost me {price} at the shop on {street}, which felt steep.",
    "By week {n} things looked better, or at least the {place} smelled less weird.",
    "I won't pretend I know what I'm doing here -- I mostly copied what {name} did.",
    "Kids thought the whole thing was hilarious. The cat was less impressed.",
    "If you're reading this from {town}: the hardware place closes at 5 on Saturdays now. "
    "Learned that the hard way.",
    "Will report back. Probably in {month}, knowing me.",
]
H_NEWS = [
    "{town} council voted {a}-{b} on {day} evening to fund a pilot scheme on {concept}.",
    "Residents near {street} said the change had been discussed for years without result.",
    '"We just want {t1} sorted before winter," said {name}, who has lived in {town} for {n} years.',
    "The scheme will cost an estimated {price}, according to figures released by the council.",
    "Opposition members argued the money would be better spent on {t2}.",
    "A public meeting is scheduled for {month} at the library on {street}.",
    "Local shop owners reported mixed feelings, with several declining to comment.",
    "The council's own report noted that {t1} complaints had risen by {n} percent since last year.",
]
H_FORUM = [
    "anyone else had trouble trying to {task}? i've tried {t1} and {t2} and neither helped",
    "Running into the same thing as {name} above. {t1_cap} just doesn't behave like the guides say.",
    "update: swapped out {t1}, no change. starting to think it's {t2} tbh",
    "lol yeah that was me in {month}. ended up giving up for a week and it fixed itself??",
    "Not an expert but I've done this {n} times now. Don't skip {t1}, whatever the videos say.",
    "mods pls move this if wrong subforum",
    "Thanks all, marking solved. For future searchers: it was {t2}. Always is.",
    "Bought mine second-hand for {price}, works fine, no regrets.",
]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "March", "April", "June", "August", "October", "November"]
PLACES = ["garden", "kitchen", "garage", "balcony", "spare room", "shed"]


def _fill(rng: random.Random, template: str, topic: dict) -> str:
    t1, t2 = rng.sample(topic["terms"], 2)
    return template.format(
        task=topic["task"],
        concept=topic["concept"],
        t1=t1,
        t2=t2,
        t1_cap=t1[:1].upper() + t1[1:],
        day=rng.choice(DAYS),
        month=rng.choice(MONTHS),
        place=rng.choice(PLACES),
        name=rng.choice(NAMES),
        town=rng.choice(TOWNS),
        street=rng.choice(STREETS),
        n=rng.randint(2, 19),
        price=f"${rng.randint(3, 240)}" if rng.random() < 0.5 else f"{rng.randint(3, 240)} pounds",
        a=rng.randint(4, 9),
        b=rng.randint(0, 3),
    )


def human_text(rng: random.Random, topic: dict, voice: str) -> str:
    pool = {"blog": H_BLOG, "news": H_NEWS, "forum": H_FORUM}[voice]
    n_paragraphs = rng.randint(2, 4)
    paragraphs = []
    for _ in range(n_paragraphs):
        sentences = [_fill(rng, t, topic) for t in rng.sample(pool, rng.randint(2, 4))]
        paragraphs.append(" ".join(sentences))
    return "\n\n".join(paragraphs)


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


def teacher_references(rng: random.Random, n: int) -> list[dict]:
    records = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        prompt = teacher_prompt(rng, topic)
        records.append(
            {
                "id": f"teacher-{i:04d}",
                "text": teacher_answer(rng, topic),
                "source": "teacher-samples",
                "prompt_id": f"p{i:04d}",
                "prompt": prompt,
            }
        )
    return records


def human_references(rng: random.Random, n: int) -> list[dict]:
    voices = ["blog", "news", "forum"]
    records = []
    for i in range(n):
        voice = voices[i % 3]
        topic = rng.choice(TOPICS)
        records.append(
            {
                "id": f"human-{i:04d}",
                "text": human_text(rng, topic, voice),
                "source": f"human-{voice}",
                "prompt_id": None,
                "prompt": None,
            }
        )
    return records


def _page(site: str, title: str, body_html: str, nav: list[str]) -> str:
    links = "".join(f'<li><a href="/{html.escape(x.lower())}">{html.escape(x)}</a></li>' for x in nav)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)} | {html.escape(site)}</title></head>\n<body>\n"
        f'<header><a href="/">{html.escape(site)}</a><nav><ul>{links}</ul></nav></header>\n'
        f"<main><article><h1>{html.escape(title)}</h1>\n{body_html}\n</article></main>\n"
        "<footer><p>Contact us | Privacy | Terms</p>"
        "<p>All content on this demo site is synthetic.</p></footer>\n"
        "</body></html>\n"
    )


def _paragraphs_html(text: str) -> str:
    # <br> keeps list lines apart in the extracted text, as real answer pages render them.
    return "\n".join(
        f"<p>{html.escape(p).replace(chr(10), '<br>' + chr(10))}</p>" for p in text.split("\n\n")
    )


def crawl_pages(rng: random.Random, teacher_refs: list[dict], year: int, with_teacher: bool) -> list[dict]:
    """HTML pages of the demo sites: ``{"url", "date", "html"}``, in crawl order."""
    pages = []
    start = datetime(year, 3, 2, 4, 0, 0, tzinfo=UTC)
    nav = {
        "news": ["Local", "Council", "Sport"],
        "forum": ["Latest", "Categories"],
        "blog_garden": ["Posts", "About"],
        "blog_life": ["Archive", "About"],
        "qa": ["Questions", "Top"],
    }
    counts = {"news": 9, "forum": 9, "blog_garden": 8, "blog_life": 8}
    if with_teacher:
        counts["qa"] = 14
    voice = {"news": "news", "forum": "forum", "blog_garden": "blog", "blog_life": "blog"}
    for kind, count in counts.items():
        site = SITES[kind]
        for i in range(count):
            topic = rng.choice(TOPICS)
            if kind == "qa":
                # Templated Q/A dump: half the answers are copies of reference outputs, half are fresh.
                if i % 2 == 0:
                    ref = teacher_refs[(i * 7) % len(teacher_refs)]
                    question, answer = ref["prompt"], ref["text"]
                else:
                    question, answer = teacher_prompt(rng, topic), teacher_answer(rng, topic)
                title = f"Q: {question}"
                body = (
                    f'<p>Question: {html.escape(question)}</p>\n<div class="answer"><p>Answer:</p>\n'
                    f"{_paragraphs_html(answer)}</div>"
                )
            else:
                text = human_text(rng, topic, voice[kind])
                title = (
                    topic["task"].capitalize()
                    if kind.startswith("blog")
                    else f"{topic['concept'].capitalize()} notes"
                )
                if with_teacher and kind.startswith("blog") and i % 4 == 1:
                    # A blog post that pastes an assistant's answer between its own paragraphs.
                    # an answer on the post's own topic (references cycle through TOPICS)
                    same_topic = teacher_refs[TOPICS.index(topic) :: len(TOPICS)]
                    ref = same_topic[(i + len(pages)) % len(same_topic)]
                    first, _, rest = text.partition("\n\n")
                    more = human_text(rng, topic, "blog")
                    text = (
                        f"{first}\n\nI asked one of those AI chat assistants about it "
                        "and this is what it said:"
                        f"\n\n{ref['text']}\n\n{rest or more}\n\n{more}"
                    )
                body = _paragraphs_html(text)
            slug = "-".join(topic["task"].split()[:4])
            url = f"https://{site}/{year}/{i:02d}/{slug}"
            date = start + timedelta(hours=7 * len(pages), minutes=rng.randint(0, 59))
            pages.append({"url": url, "date": date, "html": _page(site, title, body, nav[kind])})
    return pages


# --------------------------------------------------------------------------------------------
# WARC writer (WARC/1.1, one gzip member per record, fixed record ids and dates)
# --------------------------------------------------------------------------------------------


def _record_id(*parts: str) -> str:
    digest = hashlib.sha1("|".join(parts).encode()).digest()[:16]
    return f"<urn:uuid:{uuid.UUID(bytes=digest)}>"


def _sha1_b32(data: bytes) -> str:
    return "sha1:" + base64.b32encode(hashlib.sha1(data).digest()).decode()


def _warc_record(warc_type: str, date: datetime, block: bytes, extra: dict[str, str]) -> bytes:
    headers = {
        "WARC-Type": warc_type,
        "WARC-Record-ID": _record_id(
            warc_type, date.isoformat(), extra.get("WARC-Target-URI", ""), hashlib.sha1(block).hexdigest()
        ),
        "WARC-Date": date.strftime("%Y-%m-%dT%H:%M:%SZ"),
        **extra,
        "WARC-Block-Digest": _sha1_b32(block),
        "Content-Length": str(len(block)),
    }
    head = "WARC/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    raw = head.encode("utf-8") + block + b"\r\n\r\n"
    return gzip.compress(raw, compresslevel=9, mtime=0)


def _http_response(body: bytes, content_type: str, date: datetime) -> bytes:
    head = (
        "HTTP/1.1 200 OK\r\n"
        f"Date: {date.strftime('%a, %d %b %Y %H:%M:%S GMT')}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    )
    return head.encode("ascii") + body


def build_warc(pages: list[dict], filename: str, robots: bool = True) -> bytes:
    first = pages[0]["date"] - timedelta(minutes=5)
    info = (
        f"software: distill-audit sample_data/generate.py\r\nformat: WARC File Format 1.1\r\n"
        f"description: synthetic demo crawl ({filename})\r\n"
    ).encode()
    out = [
        _warc_record(
            "warcinfo", first, info, {"Content-Type": "application/warc-fields", "WARC-Filename": filename}
        )
    ]
    if robots:
        host = pages[0]["url"].split("/")[2]
        body = b"User-agent: *\nDisallow: /private/\n"
        block = _http_response(body, "text/plain", first)
        out.append(
            _warc_record(
                "response",
                first,
                block,
                {
                    "WARC-Target-URI": f"https://{host}/robots.txt",
                    "Content-Type": "application/http; msgtype=response",
                    "WARC-Payload-Digest": _sha1_b32(body),
                },
            )
        )
    for page in pages:
        url, date = page["url"], page["date"]
        host, path = url.split("/")[2], "/" + "/".join(url.split("/")[3:])
        request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: demo-crawler/1.0\r\n\r\n".encode()
        out.append(
            _warc_record(
                "request",
                date,
                request,
                {"WARC-Target-URI": url, "Content-Type": "application/http; msgtype=request"},
            )
        )
        body = page["html"].encode("utf-8")
        out.append(
            _warc_record(
                "response",
                date,
                _http_response(body, "text/html; charset=utf-8", date),
                {
                    "WARC-Target-URI": url,
                    "Content-Type": "application/http; msgtype=response",
                    "WARC-Payload-Digest": _sha1_b32(body),
                },
            )
        )
    return b"".join(out)


# --------------------------------------------------------------------------------------------
# JSONL shard and top level
# --------------------------------------------------------------------------------------------


def jsonl_shard(rng: random.Random, teacher_refs: list[dict]) -> list[dict]:
    rows = []
    start = datetime(2024, 5, 10, 9, 0, 0, tzinfo=UTC)
    for i in range(36):
        topic = rng.choice(TOPICS)
        if i % 9 == 4:
            # A forum reply that is a pasted assistant answer (fresh, not a reference copy).
            text = f"pasting what the chatbot told me:\n\n{teacher_answer(rng, topic)}"
        else:
            text = human_text(rng, topic, "forum" if i % 2 else "blog")
        date = start + timedelta(hours=5 * i, minutes=rng.randint(0, 59))
        rows.append(
            {
                "url": f"https://tinkerers-forum.example/t/{1000 + i}",
                "date": date.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "text": text,
            }
        )
    return rows


def _jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)


def generate(out: Path = SAMPLE_DIR) -> list[Path]:
    """Write every demo file under ``out``; return their paths (relative order is fixed)."""
    out = Path(out)
    teacher = teacher_references(random.Random(SEED), N_TEACHER)
    human = human_references(random.Random(SEED + 1), N_HUMAN)
    crawl = crawl_pages(random.Random(SEED + 2), teacher, 2024, with_teacher=True)
    baseline = crawl_pages(random.Random(SEED + 3), teacher, 2021, with_teacher=False)
    shard = jsonl_shard(random.Random(SEED + 4), teacher)

    files: dict[str, bytes] = {
        "teacher/teacher.jsonl": _jsonl(teacher).encode("utf-8"),
        "human/human.jsonl": _jsonl(human).encode("utf-8"),
        "crawl/web-2024.warc.gz": build_warc(crawl, "web-2024.warc.gz"),
        "crawl/shard-0001.jsonl": _jsonl(shard).encode("utf-8"),
        "baseline/web-2021.warc.gz": build_warc(baseline, "web-2021.warc.gz"),
    }
    written = []
    for rel, data in files.items():
        path = out / rel
        atomic_write_bytes(path, data)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=SAMPLE_DIR, help="output directory (default: sample_data/)"
    )
    args = parser.parse_args(argv)
    for path in generate(args.out):
        print(path)


if __name__ == "__main__":  # pragma: no cover
    main()
