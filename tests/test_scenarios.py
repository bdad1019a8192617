"""Scenario generator (known truth from real dev text) and a few end-to-end seeds per scenario.

The 20-seed statistics (absolute error, CI coverage, verdict accuracy) are the benchmark's
job (``python -m bench.bench_estimation``); here a few seeds check what must hold every time.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bench.scenarios import (
    CRAWL_SOURCE,
    SCENARIOS,
    build_scenario,
    build_universe,
    pool_of,
    split_pools,
    write_corpus,
)
from pipeline.detect import calibrate_placement, detect
from pipeline.report import build_report

CUTOFF = datetime(2022, 11, 1, tzinfo=UTC)


@pytest.fixture(scope="session")
def universe(dev_human, dev_openai, dev_other_llm):
    return build_universe(dev_human, dev_openai, dev_other_llm)


def test_pools_are_disjoint_by_prompt(dev_human, dev_openai, dev_other_llm):
    where: dict[str, str] = {}
    for r in dev_human + dev_openai + dev_other_llm:
        key = r.get("prompt_id") or r["id"]
        assert where.setdefault(key, pool_of(r)) == pool_of(r)
    pools = split_pools(dev_openai)
    assert all(pools[name] for name in pools)


def test_universe_roles_truth_and_baseline_dates(universe):
    docs = universe.docs
    base = [docs[i] for role, idx in universe.by_role.items() if role.startswith("baseline") for i in idx]
    scen = [d for d in docs if not d["role"].startswith("baseline")]
    assert base and all(d["crawl_date"] < CUTOFF for d in base)
    assert all(d["crawl_date"] >= CUTOFF for d in scen)
    assert not {d["text"] for d in base} & {d["text"] for d in scen if d["kind"] == "human"}
    for i in universe.by_role["contaminated"][:200]:
        d = docs[i]
        assert d["kind"].startswith("teacher_") and 0 < d["teacher_chars"] <= d["n_chars"]
    assert all(docs[i]["kind"] == "teacher_dump" for i in universe.by_role["dump_teacher:qa-dump"])


def test_held_out_models_are_all_scenario_text(dev_human, dev_openai, dev_other_llm):
    """bench.unseen_llms: models the detectors were not trained on supply every one of their
    texts to the scenarios (none to the train, placement or baseline pools), and no dump copies
    a reference output (the references hold none of their texts)."""
    teacher = [r for r in dev_openai if pool_of(r) != "train"][:300]
    other = dev_other_llm[:300]
    held = build_universe(dev_human, teacher, other, teacher_all_scenario=True, other_llm_all_scenario=True)
    doc_ids = {d["doc_id"] for d in held.docs}
    assert all(f"cont-{r['id']}" in doc_ids for r in teacher)
    assert all(f"oth-{r['id']}" in doc_ids for r in other)
    teacher_ids = {r["id"] for r in teacher}
    dumps = [held.docs[i]["doc_id"] for role in ("dump_teacher:qa-dump", "dump_teacher:chat-export")
             for i in held.by_role.get(role, [])]
    assert dumps and all(d.removeprefix("dump-") in teacher_ids for d in dumps)


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_truth_matches_its_description(universe, name):
    a = build_scenario(name, 1, universe)
    b = build_scenario(name, 1, universe)
    assert a.corpus == b.corpus and a.baseline == b.baseline  # deterministic per seed
    assert not set(a.corpus) & set(a.baseline)
    truth = a.truth
    crawl = truth["sources"][CRAWL_SOURCE]
    if name in ("clean", "deliberate", "hard_negative"):
        assert crawl["teacher_share"] == 0 and crawl["verdict"] == "clean"
    if name in ("incidental", "mixed"):
        assert 0.009 <= crawl["teacher_share"] <= 0.051 and crawl["verdict"] == "incidental"
    dumps = [s for s, v in truth["sources"].items() if v["verdict"] == "deliberate-style"]
    if name in ("deliberate", "mixed"):
        assert dumps and all(0.39 <= truth["sources"][s]["teacher_share"] <= 0.81 for s in dumps)
    else:
        assert not dumps
    if name == "hard_negative":
        assert truth["teacher_share"] == 0 and truth["other_llm_share"] > 0
        assert truth["sources"]["instruct-human"]["verdict"] == "clean"


# ---------------------------------------------------------------------------------------
# end to end with the real detectors, a few seeds

SMALL = {"n_pages": 500, "n_baseline": 400}


@pytest.fixture(scope="session")
def detectors_dirs(tmp_path_factory, dev_human, dev_openai, dev_other_llm):
    """Classifier + index trained on a deterministic slice of the train pools; placement measured."""
    pytest.importorskip("detectors.classifier", reason="detectors.classifier (issue #4) not present")
    return _train_detectors(tmp_path_factory.mktemp("detectors"), dev_human, dev_openai, dev_other_llm)


def _train_detectors(root, human, teacher, other_llm):
    """(model, index) directories under ``root``: the classifier trained on a deterministic slice
    of the train pools, the index of the teacher's train pool, the placement measured on the
    placement pools."""
    from detectors.classifier import train_model
    from detectors.minhash import ReferenceIndex

    hp, tp, op = split_pools(human), split_pools(teacher), split_pools(other_llm)
    def sample(records, n=250):  # a deterministic slice: training cost grows fast with size
        return records[:: max(1, len(records) // n)]

    train_model(sample(tp["train"]), sample(hp["train"]), sample(op["train"]), root / "model", random_state=0)
    refs = tp["train"]
    ReferenceIndex().fit([r["text"] for r in refs], [r["id"] for r in refs]).save(root / "index")
    calibrate_placement(root / "model", [r["text"] for r in tp["placement"]],
                        [r["text"] for r in hp["placement"] if len(r["text"]) > 200],
                        [r["text"] for r in op["placement"]], n_per_kind=80, seed=0,
                        teacher_prompts=[r.get("prompt") for r in tp["placement"]])
    return root / "model", root / "index"


def _run(universe, detectors_dirs, name, seed, tmp_path):
    model, index = detectors_dirs
    sc = build_scenario(name, seed, universe, **SMALL)
    corpus = write_corpus(universe.rows(sc.corpus), tmp_path / f"{name}-{seed}-corpus")
    base = write_corpus(universe.rows(sc.baseline), tmp_path / f"{name}-{seed}-base")
    detect(corpus, tmp_path / f"{name}-{seed}-scores", model_dir=model, index_dir=index)
    detect(base, tmp_path / f"{name}-{seed}-bscores", model_dir=model, index_dir=index)
    with_base = build_report(tmp_path / f"{name}-{seed}-scores", tmp_path / f"{name}-{seed}-r1",
                             baseline_scores_dir=tmp_path / f"{name}-{seed}-bscores",
                             config={"n_boot": 300}, seed=seed)
    without = build_report(tmp_path / f"{name}-{seed}-scores", tmp_path / f"{name}-{seed}-r2",
                           config={"n_boot": 300}, seed=seed)
    return sc, with_base, without


def _labels(report):
    return {s["source"]: s["verdict"]["label"] for s in report["sources"]}


@pytest.mark.parametrize("name", ["clean", "hard_negative"])
def test_clean_corpora_are_never_called_contaminated(universe, detectors_dirs, tmp_path, name):
    sc, with_base, without = _run(universe, detectors_dirs, name, 0, tmp_path)
    for report in (with_base, without):
        assert report["verdict"]["label"] in ("clean", "inconclusive"), report["verdict"]
        assert set(_labels(report).values()) <= {"clean", "inconclusive"}
        assert report["teacher_share"]["ci_low"] <= sc.truth["teacher_share"] + 1e-9
    # the opt-in lower estimation thresholds are recorded in the report. They are NOT safe here
    # (docs/verdict.md): with this small model the crawl's other-LLM pages pass them and the
    # crawl came out "incidental", which is why they are off by default
    low = build_report(tmp_path / f"{name}-0-scores", tmp_path / f"{name}-0-r3",
                       baseline_scores_dir=tmp_path / f"{name}-0-bscores",
                       config={"n_boot": 100, "estimation_fpr": 0.01}, seed=0)
    assert low["calibration"]["estimation_fpr"] == 0.01
    assert low["calibration"]["estimation_thresholds"]["segment_threshold"] < \
        with_base["detectors"]["flag_rule"]["segment_threshold"]
    assert with_base["calibration"]["estimation_thresholds"] is None
    # the same-site baseline can only sharpen the crawl's interval (its FPR is measured, not bounded)
    crawl = {r: next(s for s in rep["sources"] if s["source"] == CRAWL_SOURCE)["teacher_share"]
             for r, rep in (("with", with_base), ("without", without))}
    assert crawl["with"]["ci_high"] <= crawl["without"]["ci_high"] + 0.01
    print(f"\n{name}: with baseline {with_base['teacher_share']['estimate']:.4f} "
          f"[{with_base['teacher_share']['ci_low']:.4f}, {with_base['teacher_share']['ci_high']:.4f}], "
          f"without [{without['teacher_share']['ci_low']:.4f}, {without['teacher_share']['ci_high']:.4f}]")


@pytest.mark.parametrize("name", ["deliberate", "mixed"])
def test_dumps_are_deliberate_style_and_named(universe, detectors_dirs, tmp_path, name):
    sc, with_base, _ = _run(universe, detectors_dirs, name, 1, tmp_path)
    labels = _labels(with_base)
    dumps = [s for s, v in sc.truth["sources"].items() if v["verdict"] == "deliberate-style"]
    for dump in dumps:
        assert labels[dump] == "deliberate-style"
    assert with_base["verdict"]["label"] == "deliberate-style"
    assert with_base["verdict"]["source"] in dumps
    t = with_base["teacher_share"]
    print(f"\n{name}: truth {sc.truth['teacher_share']:.4f} estimate {t['estimate']:.4f} "
          f"[{t['ci_low']:.4f}, {t['ci_high']:.4f}] cc {t['flagged_share']:.4f}; {labels}")


def test_a_teacher_version_the_detectors_never_saw_stays_inside_the_interval(
        dev_human, dev_openai, dev_other_llm, tmp_path):
    """Detectors trained and calibrated without dev's GPT-4 answers; a dump of GPT-4 answers
    (prompts outside the train pool) beside a crawl. GPT-4 text is mostly taken for another
    LLM's, so the teacher share's point estimate is far too low; the interval must still reach
    the truth, the dump must not be called clean, and its reason must name its LLM text. With
    the allowance for unseen teacher versions off, the interval misses (session 4's estimator)."""
    from bench.unseen_llms import TEACHER_GROUPS, universe_without_teacher

    seen, universe = universe_without_teacher(TEACHER_GROUPS["teacher:gpt-4"], dev_human, dev_openai,
                                              dev_other_llm)
    model_dir, index_dir = _train_detectors(tmp_path, dev_human, seen, dev_other_llm)
    sc = build_scenario("deliberate", 1, universe, **SMALL)
    for name, idx in (("corpus", sc.corpus), ("base", sc.baseline)):
        write_corpus(universe.rows(idx), tmp_path / name)
        detect(tmp_path / name, tmp_path / f"{name}-scores", model_dir=model_dir, index_dir=index_dir)

    def report(unseen_models=None):
        config = {"n_boot": 400, "top_domains": 0}
        if unseen_models is not None:
            config["unseen_models"] = unseen_models
        return build_report(tmp_path / "corpus-scores", tmp_path / "report",
                            baseline_scores_dir=tmp_path / "base-scores", config=config, seed=1)

    truth = sc.truth["teacher_share"]
    allowed = report()
    share = allowed["teacher_share"]
    expected = {name: v["verdict"] for name, v in sc.truth["sources"].items()}
    dumps = [s for s in allowed["sources"] if expected[s["source"]] == "deliberate-style"]
    print(f"\nGPT-4 held out: truth {truth:.4f}, estimate {share['estimate']:.4f} "
          f"[{share['ci_low']:.4f}, {share['ci_high']:.4f}], any-LLM {allowed['llm_share']['estimate']:.4f}; "
          + "; ".join(f"{s['source']}: {s['verdict']['label']} ({s['verdict']['reason']})" for s in dumps))
    assert share["estimate"] < truth / 2  # the detectors take most GPT-4 text for another LLM's
    assert share["ci_low"] <= truth <= share["ci_high"]
    assert dumps and all(s["verdict"]["label"] != "clean" for s in dumps)
    assert any("looks like another LLM's text" in s["verdict"]["reason"] for s in dumps)
    off = report({"teacher_other_likeness": 0.0, "teacher_min_detectability": 1.0})["teacher_share"]
    assert off["ci_high"] < truth
