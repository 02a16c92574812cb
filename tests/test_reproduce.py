"""``raitner reproduce``: configs, plan (de-duplication), resumable runs, verdicts, report.

The end-to-end tests run ``configs/reproduce/smoke.yaml`` on the tiny random Qwen2 of
``tiny_models`` with the hashing embedder: two training runs of two steps, six evaluations of
three texts, in a few seconds.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from raitner.reproduce.config import (
    ReproduceConfigError,
    VerdictSettings,
    apply_overrides,
    parse_config,
    read_config,
)
from raitner.reproduce.plan import distribute, make_plan
from raitner.reproduce.runner import (
    CLAIM,
    MARKER,
    Runner,
    claim_holder,
    load_training_examples,
    read_marker,
    release_claim,
    reproduce,
    try_claim,
)
from raitner.reproduce.verdicts import (
    INCONCLUSIVE,
    NOT_REPRODUCED,
    NOT_RUN,
    REPRODUCED,
    judge,
)
from raitner.schema import Entity, Example

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "reproduce"
_STACK = ("torch", "transformers", "trl", "peft", "datasets")
needs_training_stack = pytest.mark.skipif(
    any(importlib.util.find_spec(name) is None for name in _STACK),
    reason="training needs torch, transformers, trl, peft and datasets",
)


def _minimal(**changes) -> dict:
    """A small valid config mapping (English, two recipes, one study)."""
    config = {
        "name": "t",
        "language": "en",
        "seeds": [1],
        "sizes": {"main": 10},
        "mixes": {"open": {"wnut17:train": 1, "conll2003:train": 1}},
        "eval": {"benchmarks": ["crossner_ai"], "limit": 2},
        "recipes": {"vanilla": {"mode": "vanilla"}, "nn": {"mode": "ra-it", "strategy": "nn"}},
        "studies": [
            {
                "name": "a",
                "size": "main",
                "arms": [
                    {"name": "v", "recipe": "vanilla"},
                    {"name": "r", "recipe": "nn"},
                ],
                "comparisons": [{"baseline": "v", "treatment": "r", "expect": "higher"}],
            }
        ],
    }
    config.update(changes)
    return config


# ---------------------------------------------------------------------------- config errors


def test_unknown_keys_are_named_with_the_known_ones():
    with pytest.raises(ReproduceConfigError, match=r"config: unknown key\(s\) sise; known: name"):
        parse_config(_minimal(sise=3))
    bad = _minimal()
    bad["studies"][0]["arms"][0]["inferance"] = "none"
    with pytest.raises(
        ReproduceConfigError, match=r"studies.a.arms\[0\]: unknown key\(s\) inferance"
    ):
        parse_config(bad)
    with pytest.raises(ReproduceConfigError, match="train: unknown training setting"):
        parse_config(_minimal(train={"learning_rat": 1e-4}))
    with pytest.raises(ReproduceConfigError, match="the runner sets the datasets"):
        parse_config(_minimal(train={"output_dir": "x"}))
    with pytest.raises(ReproduceConfigError, match="verdict.confidence: expected a level"):
        parse_config(_minimal(verdict={"confidence": 95}))
    with pytest.raises(ReproduceConfigError, match="verdict.resamples"):
        parse_config(_minimal(verdict={"resamples": -1}))
    assert parse_config(_minimal(verdict={"resamples": 0})).verdict.resamples == 0


def test_unknown_strategy_and_references_are_clear_errors():
    bad = _minimal(recipes={"nn": {"mode": "ra-it", "strategy": "nearest"}})
    with pytest.raises(
        ReproduceConfigError, match="recipes.nn: unknown retrieval strategy 'nearest'"
    ):
        parse_config(bad)
    with pytest.raises(ReproduceConfigError, match="vanilla IT retrieves nothing"):
        parse_config(_minimal(recipes={"vanilla": {"mode": "vanilla", "k": 2}}))
    bad = _minimal()
    bad["studies"][0]["comparisons"][0]["treatment"] = "missing"
    with pytest.raises(ReproduceConfigError, match="no arm 'missing'; arms: v, r"):
        parse_config(bad)
    bad = _minimal()
    bad["studies"][0]["size"] = "huge"
    with pytest.raises(ReproduceConfigError, match="unknown size 'huge'; sizes: main"):
        parse_config(bad)
    with pytest.raises(ReproduceConfigError, match="unknown benchmark 'crossner_aj'"):
        parse_config(_minimal(eval={"benchmarks": ["crossner_aj"]}))


@pytest.mark.parametrize(
    "mix",
    [
        {"wnut17:train": 1, "crossner_ai:train": 1},
        {"mit_movie:train": 1},
        {"uniner_eval_crossner_music:test": 1},
    ],
)
def test_an_evaluation_only_benchmark_in_a_training_mix_is_refused(mix):
    with pytest.raises(ReproduceConfigError, match="zero-shot protocol"):
        parse_config(_minimal(mixes={"open": mix}))


def test_training_on_an_evaluated_benchmark_or_its_twin_is_refused():
    config = _minimal(
        language="zh",
        mixes={"zh": {"msra:train": 1, "boson:train": 1}},
        eval={"benchmarks": ["boson", "weibo"], "limit": 2},
    )
    with pytest.raises(ReproduceConfigError, match="boson is evaluated in study a.*zero-shot"):
        parse_config(config)
    config["mixes"] = {"zh": {"weibo_v1:train": 1}}
    with pytest.raises(ReproduceConfigError, match="weibo is evaluated"):
        parse_config(config)
    config["recipes"]["nn"]["sources"] = ["boson:train@5"]
    config["mixes"] = {"zh": {"msra:train": 1}}
    with pytest.raises(ReproduceConfigError, match=r"recipes.nn.sources.*boson:train@5"):
        parse_config(config)


def test_in_domain_pools_need_a_pool_split():
    config = _minimal(
        language="zh",
        mixes={"zh": {"msra:train": 1}},
        eval={"benchmarks": ["cmeee"], "split": "dev", "limit": 2},
        inference={"in_10": {"examples": "in_domain", "pool_size": 10}},
    )
    config["studies"][0]["inference"] = "in_10"
    with pytest.raises(ReproduceConfigError, match="need cmeee:train as the example pool"):
        parse_config(config)


def test_overrides_set_nested_values():
    data = _minimal()
    changed = apply_overrides(
        data,
        ["base_model=/models/tiny", "sizes.main=3", "train.max_steps=2", "studies.0.seeds=[4]"],
    )
    assert changed["base_model"] == "/models/tiny" and changed["sizes"]["main"] == 3
    assert changed["train"] == {"max_steps": 2} and changed["studies"][0]["seeds"] == [4]
    assert "base_model" not in data  # the original is left alone
    with pytest.raises(ReproduceConfigError, match="KEY=VALUE"):
        apply_overrides(data, ["sizes.main"])
    config = parse_config(changed)
    assert config.study("a").arms[0].size == 3 and config.study("a").seeds == (4,)


@pytest.mark.parametrize("name", ["smoke", "en", "zh", "en-default-model"])
def test_committed_configs_parse_and_plan(name, tmp_path, capsys):
    from raitner.cli import main

    config = read_config(CONFIGS / f"{name}.yaml")
    plan = make_plan(config, tmp_path)
    counts = plan.counts()
    assert counts["train"] >= 1 and counts["eval"] >= counts["train"]
    assert (
        main(["reproduce", str(CONFIGS / f"{name}.yaml"), "--dry-run", "--results", str(tmp_path)])
        == 0
    )
    out = capsys.readouterr().out
    assert f"[1/{len(plan.stages)}] build to do" in out and "dry run: nothing was run" in out
    assert not any(tmp_path.iterdir())  # a dry run writes nothing


def test_the_default_inference_config_evaluates_the_packaged_adapter(tmp_path):
    config = read_config(CONFIGS / "en-default-inference.yaml")
    plan = make_plan(config, tmp_path)
    counts = plan.counts()
    # nothing trained; 6 distinct arms (no-examples is shared by both studies) × 7 benchmarks
    assert counts == {"build": 0, "train": 0, "eval": 42}
    assert {s.spec["model"] for s in plan.stages} == {"base:src/raitner/default_model"}


def test_a_local_base_model_is_fingerprinted_by_its_files(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "adapter_config.json").write_text('{"r": 16}')
    (model / "adapter_model.safetensors").write_bytes(b"\0" * (3 << 20))
    data = _minimal(
        base_model=str(model),
        recipes={"base": {"mode": "base"}, "vanilla": {"mode": "vanilla"}},
    )
    data["studies"][0]["arms"] = [
        {"name": "b", "recipe": "base"},
        {"name": "v", "recipe": "vanilla"},
    ]
    data["studies"][0]["comparisons"] = []

    def ids(kind: str) -> set[str]:
        plan = make_plan(parse_config(data), tmp_path)
        return {stage.id for stage in plan.stages if stage.kind == kind}

    before = {kind: ids(kind) for kind in ("build", "train", "eval")}
    assert len(before["eval"]) == 2 and len(before["train"]) == 1
    assert {kind: ids(kind) for kind in before} == before  # stable
    # the same size, other bytes in the last MiB of the weights: the model's training and
    # every evaluation are new stages; the training set does not depend on the model
    with (model / "adapter_model.safetensors").open("r+b") as handle:
        handle.seek((3 << 20) - 10)
        handle.write(b"retrained!")
    assert ids("build") == before["build"]
    assert ids("train").isdisjoint(before["train"])
    assert ids("eval").isdisjoint(before["eval"])
    # an embedded model is named by its name alone: no fingerprint in any spec
    embedded = make_plan(parse_config(_minimal(base_model="default")), tmp_path)
    assert not any("base_model_files" in s.spec for s in embedded.stages)


def test_the_command_reports_config_errors(tmp_path, capsys):
    import yaml

    from raitner.cli import main

    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_minimal(mixes={"open": {"crossner_music:train": 1}})))
    assert main(["reproduce", str(path), "--dry-run"]) == 2
    error = capsys.readouterr().err
    assert "bad.yaml: mixes.open" in error and "zero-shot protocol" in error
    assert main(["reproduce", str(CONFIGS / "smoke.yaml"), "--dry-run", "--only", "nope"]) == 2
    assert "no study 'nope' in smoke; studies: main, inference" in capsys.readouterr().err
    smoke = str(CONFIGS / "smoke.yaml")
    assert main(["reproduce", smoke, "--dry-run", "--report-only"]) == 2
    assert "pick one" in capsys.readouterr().err


def test_importing_the_command_loads_no_heavy_library():
    import subprocess

    code = (
        "import sys, raitner.cli, raitner.reproduce.runner, raitner.reproduce.tables, "
        "raitner.reproduce.plots; "
        "print(sorted({'torch', 'transformers', 'matplotlib', 'trl'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


# ---------------------------------------------------------------------------- plan


def test_two_studies_sharing_an_arm_train_it_once(tmp_path):
    data = _minimal()
    data["studies"].append(
        {
            "name": "b",
            "size": 10,  # the same number as the named size: the same model
            "arms": [{"name": "nn-again", "recipe": "nn"}],
        }
    )
    plan = make_plan(parse_config(data), tmp_path)
    assert plan.counts() == {"build": 2, "train": 2, "eval": 2}
    shared = plan.run_of("b", "nn-again", 1)
    assert shared.train == plan.run_of("a", "r", 1).train
    assert plan.stage(shared.train).studies == ["a", "b"]
    only_b = make_plan(parse_config(data), tmp_path, only=["b"])
    assert only_b.counts() == {"build": 1, "train": 1, "eval": 1}


def test_sizes_are_split_by_weight_and_smaller_draws_are_subsets(tmp_path):
    assert distribute(10, {"a": 1, "b": 1, "c": 1}) == {"a": 4, "b": 3, "c": 3}
    assert distribute(7, {"a": 3, "b": 1}) == {"a": 5, "b": 2}
    source = tmp_path / "s.jsonl"
    lines = []
    for i in range(30):
        entities = [Entity(0, 4, "Anna", "person")] if i % 3 else []
        lines.append(json.dumps(Example(f"x{i}", "Anna is here", "en", entities).to_dict()))
    source.write_text("\n".join(lines) + "\n")
    data = {"mix": {str(source): 5}, "seed": 3, "only_with_entities": True}
    small = load_training_examples(data, None)
    large = load_training_examples({**data, "mix": {str(source): 12}}, None)
    assert len(small) == 5 and all(ex.entities for ex in large)
    assert {ex.id for ex in small} <= {ex.id for ex in large}
    with pytest.raises(Exception, match="has 20 texts with entities, the size asks for 25"):
        load_training_examples({**data, "mix": {str(source): 25}}, None)


@pytest.mark.parametrize("show_progress", [True, False])
def test_a_build_stage_shows_its_progress_unless_quiet(show_progress, data_root, tmp_path, capsys):
    # building an RA-IT set of thousands of conversations takes minutes: the stage shows its
    # samples (and the retrieval's) as they go, unless --quiet
    plan = make_plan(read_config(CONFIGS / "smoke.yaml"), tmp_path)
    stage = next(s for s in plan.stages if s.kind == "build" and s.spec["retrieval"])
    stage.folder.mkdir(parents=True)
    runner = Runner(plan, data_root, out=lambda line: None, show_progress=show_progress)
    outputs = runner._build(stage)
    assert outputs["conversations"] == 8
    bar = capsys.readouterr().err
    assert ("8/8" in bar and "sample" in bar) == show_progress


# ---------------------------------------------------------------------------- verdicts


def test_the_verdict_rule_on_hand_made_numbers():
    rule = VerdictSettings(single_seed_margin=2.0, min_margin=0.5)
    # two seeds: Δ = 3, seed range 1 → reproduced; the other way round → not reproduced
    verdict = judge("higher", {1: 50.0, 2: 51.0}, {1: 53.0, 2: 54.0}, rule)
    assert verdict.verdict == REPRODUCED and verdict.delta == 3.0 and verdict.noise == 1.0
    assert judge("higher", {1: 53.0, 2: 54.0}, {1: 50.0, 2: 51.0}, rule).verdict == NOT_REPRODUCED
    assert judge("lower", {1: 53.0, 2: 54.0}, {1: 50.0, 2: 51.0}, rule).verdict == REPRODUCED
    # the difference (1) is within the seed range (4) → inconclusive
    assert judge("higher", {1: 50.0, 2: 54.0}, {1: 51.0, 2: 55.0}, rule).verdict == INCONCLUSIVE
    # seeds that agree exactly still need the floor of 0.5 points
    tiny = judge("higher", {1: 50.0, 2: 50.0}, {1: 50.3, 2: 50.3}, rule)
    assert tiny.verdict == INCONCLUSIVE and tiny.noise == 0.5
    # one seed: a fixed margin of 2 points
    assert judge("higher", {1: 50.0}, {1: 51.5}, rule).verdict == INCONCLUSIVE
    assert judge("higher", {1: 50.0}, {1: 52.5}, rule).verdict == REPRODUCED
    # only seeds both arms have count; none → not run
    assert judge("higher", {1: 50.0, 2: 40.0}, {1: 53.0}, rule).seeds == (1,)
    assert judge("higher", {1: 50.0}, {2: 53.0}, rule).verdict == NOT_RUN


def test_the_interval_over_texts_can_only_make_a_verdict_inconclusive():
    from raitner.evaluate.significance import Interval

    rule = VerdictSettings(single_seed_margin=2.0, min_margin=0.5)
    holds_zero = Interval(-0.5, 6.0, 0.95, 2000)
    above_zero = Interval(1.0, 5.0, 0.95, 2000)
    # a 3-point gain past the margin, but another draw of texts could erase it
    verdict = judge("higher", {1: 50.0}, {1: 53.0}, rule, holds_zero)
    assert verdict.verdict == INCONCLUSIVE
    assert "95 % interval over texts [-0.50, +6.00]" in verdict.noise_basis
    assert verdict.to_dict()["interval"] == [-0.5, 6.0]
    assert judge("higher", {1: 50.0}, {1: 53.0}, rule, above_zero).verdict == REPRODUCED
    assert judge("lower", {1: 50.0}, {1: 53.0}, rule, above_zero).verdict == NOT_REPRODUCED
    # an interval clear of 0 does not lift a difference within the margin
    assert judge("higher", {1: 50.0}, {1: 51.0}, rule, above_zero).verdict == INCONCLUSIVE
    # without per-text counts the margin decides, and the basis says so
    alone = judge("higher", {1: 50.0}, {1: 53.0}, rule)
    assert alone.verdict == REPRODUCED and "margin only" in alone.noise_basis
    assert alone.to_dict()["interval"] is None


def test_decoding_settings_enter_an_evaluation_identity_only_when_set(tmp_path):
    def eval_specs(**eval_changes):
        config = parse_config(
            _minimal(eval={"benchmarks": ["crossner_ai"], "limit": 2, **eval_changes})
        )
        return [s.spec for s in make_plan(config, tmp_path).stages if s.kind == "eval"]

    plain = eval_specs()
    # left to the model: the spec (hence the stage id of a run from before) is unchanged
    assert eval_specs(close_lists=None, empty_bias=None) == plain
    assert all("close_lists" not in spec and "empty_bias" not in spec for spec in plain)
    tuned = eval_specs(close_lists=True, empty_bias=0.25)
    assert [(s["close_lists"], s["empty_bias"]) for s in tuned] == [(True, 0.25)] * len(plain)
    # explicitly off is a decoding of its own too: a packaged model may decode with them on
    assert eval_specs(close_lists=False)[0]["close_lists"] is False
    ids = {json.dumps(s, sort_keys=True) for s in plain + tuned + eval_specs(empty_bias=0.5)}
    assert len(ids) == 3 * len(plain)
    with pytest.raises(ReproduceConfigError, match=r"eval\.close_lists"):
        parse_config(_minimal(eval={"benchmarks": ["crossner_ai"], "close_lists": "often"}))
    with pytest.raises(ReproduceConfigError, match=r"eval\.empty_bias: expected a number"):
        parse_config(_minimal(eval={"benchmarks": ["crossner_ai"], "empty_bias": "high"}))


def test_eval_settings_key_holds_the_out_domain_pool():
    from raitner.evaluate.runner import EvalSettings

    in_domain = EvalSettings(benchmarks=["crossner_ai"], examples="pool")
    assert "pool_sources" not in in_domain.key("crossner_ai")  # earlier caches stay valid
    out_domain = EvalSettings(benchmarks=["crossner_ai"], examples="pool", pool_sources=["a.jsonl"])
    assert out_domain.key("crossner_ai")["pool_sources"] == ["a.jsonl"]


# ---------------------------------------------------------------------------- end to end


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    if importlib.util.find_spec("torch") is None:
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def smoke(tiny_model_dir, data_root, tmp_path_factory):
    """The smoke config run once on the tiny model: ``(config, results folder, output lines)``."""
    config = read_config(CONFIGS / "smoke.yaml", [f"base_model={tiny_model_dir}"])
    results = tmp_path_factory.mktemp("smoke-results")
    lines: list[str] = []
    reproduce(config, results, data_root=data_root, out=lines.append, show_progress=False)
    return config, results, lines


def _stage_files(results: Path) -> dict[Path, float]:
    return {p: p.stat().st_mtime_ns for p in (results / "work").rglob("*") if p.is_file()}


@needs_training_stack
def test_smoke_config_runs_end_to_end(smoke):
    config, results, lines = smoke
    assert "10 stage(s) run, 0 already done" in "\n".join(lines)
    report = json.loads((results / "results.json").read_text())
    assert [s["name"] for s in report["studies"]] == ["main", "inference"]
    main = report["studies"][0]
    vanilla = main["arms"][0]
    assert vanilla["seeds"]["1"]["complete"] and vanilla["seeds"]["1"]["steps"] == 2
    assert vanilla["seeds"]["1"]["conversations"] == 8 and vanilla["paper"] == 53.95
    comparison = main["comparisons"][0]
    assert comparison["verdict"] in (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE)
    assert comparison["paper_delta"] == 1.85 and comparison["budget"]["equal"]
    assert report["verdict_rule"].startswith("Δ = mean over seeds")
    assert all(stage["status"] == "done" for stage in report["stages"])
    table = (results / "main.md").read_text()
    assert "| vanilla | vanilla IT | no examples | 8 | 2 |" in table
    assert "Verdict rule:" in table and "53.95 (5K)" in table
    index = (results / "README.md").read_text()
    assert "[Vanilla IT vs RA-IT (smoke)](main.md)" in index
    # the --set overrides are part of what produced the numbers: the report names them
    assert report["overrides"] == [f"base_model={config.base_model}"]
    assert f"with `--set base_model={config.base_model}`" in index
    if importlib.util.find_spec("matplotlib") is not None:
        assert (results / "plots" / "main.png").read_bytes()[:4] == b"\x89PNG"
        assert "![main](plots/main.png)" in table
    # the RA-IT model serves both studies: trained once
    assert len(list((results / "work" / "models").iterdir())) == 2
    # the out-domain pool is the model's own training examples
    out_domain = next((results / "work" / "evals").rglob("crossner_ai-test-outall-*"))
    header = json.loads((out_domain / "predictions" / "crossner_ai.jsonl").open().readline())
    assert header["settings"]["pool_sources"][0].endswith("examples.jsonl")
    # every evaluation keeps its per-text counts; they add up to its scores
    for marker in (results / "work" / "evals").rglob(MARKER):
        counts = json.loads((marker.parent / "text_counts.json").read_text())
        scores = json.loads((marker.parent / "scores.json").read_text())
        assert len(counts["texts"]) == json.loads(marker.read_text())["outputs"]["texts"]
        for metric in ("uniner", "ra_it", "span"):
            summed = [sum(row[i] for row in counts[metric]) for i in range(3)]
            assert summed == [scores[metric][k] for k in ("tp", "n_pred", "n_gold")]
    low, high = comparison["interval"]
    assert low <= high and comparison["interval_level"] == 0.95
    assert "Interval (texts)" in table


@needs_training_stack
def test_a_second_run_does_no_work(smoke, data_root, monkeypatch):
    config, results, _ = smoke
    before = _stage_files(results)

    def refuse(*args, **kwargs):
        raise AssertionError("nothing may be trained or loaded on a rerun")

    monkeypatch.setattr("raitner.train.train", refuse)
    monkeypatch.setattr("raitner.api.OpenNER.from_pretrained", refuse)
    lines: list[str] = []
    reproduce(config, results, data_root=data_root, out=lines.append, show_progress=False)
    assert "0 stage(s) run, 10 already done" in "\n".join(lines)
    assert _stage_files(results) == before


@needs_training_stack
def test_evaluations_with_examples_keep_their_embeddings_in_the_results_cache(smoke, data_root):
    from raitner.evaluate.runner import seeded_subset
    from raitner.io.registry import get_benchmark
    from raitner.retrieval.cache import EmbeddingCache
    from raitner.retrieval.embedders import HashingEmbedder

    config, results, _ = smoke
    settings = config.study("inference").eval
    texts = [
        ex.text
        for ex in seeded_subset(
            get_benchmark("crossner_ai").load("test", data_root), settings.limit, settings.seed
        )
    ]
    assert texts

    class CacheOnly(HashingEmbedder):
        def encode(self, texts, **kwargs):
            raise AssertionError(f"{len(texts)} evaluated text(s) were not in the cache")

    # the evaluated texts were embedded (for their examples) through the results' cache, so a
    # later benchmark or run sharing the pool encodes nothing again
    vectors = EmbeddingCache(results / "cache" / "embeddings").encode(CacheOnly(), texts)
    assert vectors.shape[0] == len(texts)


@needs_training_stack
def test_deleting_one_eval_reruns_only_that(smoke, data_root, monkeypatch):
    config, results, _ = smoke
    evals = sorted((results / "work" / "evals").rglob(MARKER))
    target = evals[0].parent
    marker = read_marker(target)
    shutil.rmtree(target)
    before = _stage_files(results)
    monkeypatch.setattr(
        "raitner.train.train", lambda *a, **k: pytest.fail("training must not run again")
    )
    lines: list[str] = []
    reproduce(config, results, data_root=data_root, out=lines.append, show_progress=False)
    assert "1 stage(s) run, 9 already done" in "\n".join(lines)
    after = _stage_files(results)
    assert {p for p in after if after[p] != before.get(p)} == {
        p for p in after if target in p.parents
    }
    assert read_marker(target)["outputs"]["f1"] == marker["outputs"]["f1"]


@needs_training_stack
def test_evaluations_with_set_decoding_settings_reuse_the_models_and_decode_so(
    smoke, data_root, tmp_path, monkeypatch
):
    from raitner.api import OpenNER

    config, results, _ = smoke
    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    tuned = read_config(
        CONFIGS / "smoke.yaml",
        [f"base_model={config.base_model}", "eval.close_lists=true", "eval.empty_bias=0.5"],
    )
    monkeypatch.setattr(
        "raitner.train.train", lambda *a, **k: pytest.fail("the models are the same")
    )
    real = OpenNER.from_pretrained.__func__
    loaded = []

    def spy(cls, *args, **kwargs):
        ner = real(cls, *args, **kwargs)
        loaded.append(ner)
        return ner

    monkeypatch.setattr(OpenNER, "from_pretrained", classmethod(spy))
    lines: list[str] = []
    reproduce(
        tuned, copy, data_root=data_root, out=lines.append, show_progress=False, only=["main"]
    )
    assert "4 stage(s) run, 4 already done" in "\n".join(lines)  # new evaluations only
    assert loaded and all(ner.close_lists and ner.empty_bias == 0.5 for ner in loaded)
    headers = [
        json.loads(path.open().readline())["settings"]
        for path in (copy / "work" / "evals").rglob("crossner_ai.jsonl")
    ]
    decodings = sorted((h.get("close_lists", False), h.get("empty_bias", 0.0)) for h in headers)
    assert (True, 0.5) in decodings and (False, 0.0) in decodings
    # the report says how the numbers were decoded; the untuned run's report says nothing
    table = (copy / "main.md").read_text()
    assert "Decoding: list answers closed; empty-answer bias +0.5." in table
    study = json.loads((copy / "results.json").read_text())["studies"][0]
    assert (study["eval"]["close_lists"], study["eval"]["empty_bias"]) == (True, 0.5)
    assert "Decoding:" not in (results / "main.md").read_text()


@needs_training_stack
def test_an_interrupted_eval_resumes_from_its_predictions(smoke, data_root, monkeypatch):
    config, results, _ = smoke
    target = sorted((results / "work" / "evals").rglob(MARKER))[-1].parent
    (target / MARKER).unlink()  # as if killed after the predictions were written
    monkeypatch.setattr(
        "raitner.api.OpenNER.from_pretrained",
        lambda *a, **k: pytest.fail("cached predictions need no model"),
    )
    lines: list[str] = []
    reproduce(config, results, data_root=data_root, out=lines.append, show_progress=False)
    assert any("(cached predictions)" in line for line in lines)
    assert (target / MARKER).is_file()


@needs_training_stack
def test_the_report_backfills_per_text_counts_from_saved_predictions(smoke, data_root, monkeypatch):
    config, results, _ = smoke
    files = sorted((results / "work" / "evals").rglob("text_counts.json"))
    saved = {path: path.read_text() for path in files}
    for path in files:
        path.unlink()  # as evaluations finished before raitner kept them
    monkeypatch.setattr(
        "raitner.api.OpenNER.from_pretrained",
        lambda *a, **k: pytest.fail("the counts come from the saved predictions"),
    )
    lines: list[str] = []
    reproduce(config, results, data_root=data_root, out=lines.append, show_progress=False)
    assert "0 stage(s) run, 10 already done" in "\n".join(lines)
    assert {path: path.read_text() for path in files} == saved
    report = json.loads((results / "results.json").read_text())
    assert report["studies"][0]["comparisons"][0]["interval"] is not None


@needs_training_stack
def test_report_only_runs_nothing_and_reports_what_finished(
    smoke, data_root, tmp_path, monkeypatch
):
    config, results, _ = smoke

    def refuse(*args, **kwargs):
        raise AssertionError("--report-only trains and loads nothing")

    monkeypatch.setattr("raitner.train.train", refuse)
    monkeypatch.setattr("raitner.api.OpenNER.from_pretrained", refuse)
    saved = json.loads((results / "results.json").read_text())
    (results / "results.json").unlink()
    (results / "main.md").unlink()
    before = _stage_files(results)
    lines: list[str] = []
    report = reproduce(
        config,
        results,
        data_root=data_root,
        out=lines.append,
        show_progress=False,
        report_only=True,
    )
    assert "(nothing run)" in lines[-1] and _stage_files(results) == before
    assert json.loads((results / "results.json").read_text())["studies"] == saved["studies"]
    assert report["studies"] == saved["studies"] and (results / "main.md").is_file()
    # an untouched results folder: every arm not run, no stage folder made
    fresh = tmp_path / "fresh"
    report = reproduce(
        config, fresh, data_root=data_root, out=lines.append, show_progress=False, report_only=True
    )
    assert {c["verdict"] for s in report["studies"] for c in s["comparisons"]} == {NOT_RUN}
    assert not (fresh / "work").exists() and (fresh / "README.md").is_file()


@needs_training_stack
def test_tables_are_written_without_matplotlib(smoke, monkeypatch):
    from raitner.reproduce.tables import write_results

    config, results, _ = smoke
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib → ImportError
    (results / "main.md").unlink()
    write_results(make_plan(config, results))
    table = (results / "main.md").read_text()
    assert "| vanilla |" in table and "plots/" not in table


@needs_training_stack
def test_an_interrupted_training_resumes_from_its_checkpoint(
    tiny_model_dir, data_root, tmp_path, monkeypatch
):
    from transformers import TrainerCallback

    import raitner.train

    class Stop(Exception):
        pass

    class StopAtStep2(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 2:
                raise Stop  # after checkpoint-1 (save_steps 1), before checkpoint-2

    real_train = raitner.train.train
    overrides = [f"base_model={tiny_model_dir}", "eval.benchmarks=[crossner_ai]"]
    config = read_config(CONFIGS / "smoke.yaml", overrides)
    monkeypatch.setattr(
        "raitner.train.train", lambda settings: real_train(settings, callbacks=[StopAtStep2()])
    )
    lines: list[str] = []
    with pytest.raises(Stop):
        reproduce(config, tmp_path, only=["main"], data_root=data_root, out=lines.append)
    assert "partial report written" in lines[-1]
    report = json.loads((tmp_path / "results.json").read_text())
    assert {s["status"] for s in report["stages"] if s["kind"] == "train"} == {"not run"}

    monkeypatch.setattr("raitner.train.train", real_train)
    lines = []
    reproduce(config, tmp_path, only=["main"], data_root=data_root, out=lines.append)
    assert any("(resumes from checkpoint-1)" in line for line in lines)
    model = next((tmp_path / "work" / "models").glob("vanilla-*")) / "model"
    info = json.loads((model / "raitner.json").read_text())
    assert info["result"]["resumed_from"].endswith("checkpoint-1")
    assert info["result"]["global_step"] == 2


# ------------------------------------------------------------------ concurrent runners


def _fake_stage(folder: Path):
    from raitner.reproduce.plan import Stage

    return Stage(kind="eval", id="e", spec={}, folder=folder, what="an evaluation")


def _write_claim(folder: Path, pid: int, host: str | None = None) -> None:
    import socket

    folder.mkdir(parents=True, exist_ok=True)
    record = {"host": host or socket.gethostname(), "pid": pid, "started_at": "earlier"}
    (folder / CLAIM).write_text(json.dumps(record))


def test_a_stage_claim_is_exclusive_and_a_dead_claim_is_taken_over(tmp_path):
    import subprocess

    stage = _fake_stage(tmp_path / "stage")
    assert try_claim(stage) is None  # claimed by this process
    assert claim_holder(stage) is None  # this process's own claim holds nobody else up
    assert json.loads((stage.folder / CLAIM).read_text())["pid"] == os.getpid()
    release_claim(stage)
    assert not (stage.folder / CLAIM).exists()
    assert list(stage.folder.iterdir()) == []  # no private file left behind

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _write_claim(stage.folder, sleeper.pid)
        holder = try_claim(stage)
        assert holder is not None and holder["pid"] == sleeper.pid
        release_claim(stage)  # not ours: left alone
        assert json.loads((stage.folder / CLAIM).read_text())["pid"] == sleeper.pid
    finally:
        sleeper.kill()
        sleeper.wait()
    # the holder is gone (a killed run): the claim is stale and taken over
    assert claim_holder(stage) is None
    assert try_claim(stage) is None
    assert json.loads((stage.folder / CLAIM).read_text())["pid"] == os.getpid()
    release_claim(stage)
    # a claim from another host is never taken over: its pid means nothing here
    _write_claim(stage.folder, os.getpid(), host="another-host.invalid")
    assert try_claim(stage)["host"] == "another-host.invalid"


@needs_training_stack
def test_a_stage_claimed_by_another_process_is_left_to_it(smoke, data_root, tmp_path):
    """Two runners on one results folder: a stage another live process holds is skipped, and
    so are the stages that need it; once that process is gone, a rerun takes the stage over."""
    import subprocess

    config, original, _ = smoke
    results = tmp_path / "results"
    shutil.copytree(original, results)
    plan = make_plan(config, results)
    train = next(stage for stage in plan.stages if stage.kind == "train")
    dependents = [stage for stage in plan.stages if stage.needs == train.id]
    assert dependents
    (train.folder / MARKER).unlink()  # as if still training
    for stage in dependents:
        (stage.folder / MARKER).unlink()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        _write_claim(train.folder, sleeper.pid)
        lines: list[str] = []
        reproduce(config, results, data_root=data_root, out=lines.append, show_progress=False)
        text = "\n".join(lines)
        assert f"running in another process (pid {sleeper.pid}" in text
        assert text.count("waits for a stage another process is running") == len(dependents)
        assert f"{1 + len(dependents)} stage(s) left to another process" in text
        assert not (train.folder / MARKER).exists()
        assert all(not (stage.folder / MARKER).exists() for stage in dependents)
        assert (train.folder / CLAIM).exists()  # the other process's claim is kept
    finally:
        sleeper.kill()
        sleeper.wait()
    lines = []
    reproduce(config, results, data_root=data_root, out=lines.append, show_progress=False)
    assert f"{1 + len(dependents)} stage(s) run" in "\n".join(lines)
    assert (train.folder / MARKER).is_file()
    assert all((stage.folder / MARKER).is_file() for stage in dependents)
    assert not list(results.rglob(CLAIM))  # every claim released


def test_a_verdict_quotes_its_interval_and_noise_as_the_table_prints_them():
    from raitner.evaluate.significance import Interval
    from raitner.reproduce.tables import _interval_cell

    rule = VerdictSettings(single_seed_margin=2.0, min_margin=0.5)
    # -4.18504 rounds to -4.19 directly but to -4.18 through the stored -4.185: the verdict's
    # sentence and the table's cell must not disagree in the last digit
    interval = Interval(-4.18504, 0.27, 0.95, 2000)
    verdict = judge("higher", {1: 50.0, 2: 53.0}, {1: 47.0, 2: 51.0}, rule, interval)
    stored = verdict.to_dict()
    assert _interval_cell(stored["interval"]) in verdict.noise_basis
    spread = judge("higher", {1: 50.0, 2: 53.00504}, {1: 51.0, 2: 51.5}, rule)
    assert f"seed range {spread.to_dict()['noise']:.2f}" in spread.noise_basis


def test_plot_labels_name_the_seeds_of_an_arm_that_has_fewer_than_the_study():
    from raitner.reproduce.plots import arm_label

    def arm(name, averages):
        return {"name": name, "seeds": {str(s): {"avg": a} for s, a in averages.items()}}

    # both seeds finished, or none yet ("not run" is drawn instead): the plain name
    assert arm_label(arm("nn", {1: 10.5, 2: 13.9}), [1, 2]) == "nn"
    assert arm_label(arm("nn", {1: None, 2: None}), [1, 2]) == "nn"
    # one of two: a point without an error bar must not read as two seeds that agreed
    assert arm_label(arm("random", {1: 11.3, 2: None}), [1, 2]) == "random (seed 1)"
    assert arm_label(arm("k4", {2: 12.0}), [1, 2]) == "k4 (seed 2)"
    assert arm_label(arm("r", {1: 1.0, 3: 2.0, 2: None}), [1, 2, 3]) == "r (seeds 1, 3)"


def test_the_seeds_cell_keeps_a_slot_for_every_seed_of_the_study():
    from raitner.reproduce.tables import seeds_cell

    def arm(averages):
        return {"seeds": {str(s): {"avg": a} for s, a in averages.items()}}

    assert seeds_cell(arm({1: 13.01, 2: 13.53}), [1, 2]) == "13.01 / 13.53"
    # one of two finished: which one, and that the other is missing, must show
    assert seeds_cell(arm({1: 10.68, 2: None}), [1, 2]) == "10.68 / -"
    assert seeds_cell(arm({1: None, 2: 12.0}), [1, 2]) == "- / 12.00"
    assert seeds_cell(arm({1: 1.0}), [1]) == "1.00"
    assert seeds_cell(arm({1: None, 2: None}), [1, 2]) == "not run"
