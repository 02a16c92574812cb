"""Backend selection and constrained decoding as options of OpenNER, the CLI and the evaluation
runner: names are accepted and recorded, ``--constrained both`` reports both decodings, and
cached predictions are never reused across backends or decodings."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from raitner.api import OpenNER
from raitner.cli import main
from raitner.evaluate.runner import EvalSettings, run_evaluation
from raitner.infer.parse import AnswerStatus, parse_mentions
from raitner.infer.select import (
    BACKENDS,
    DEFAULT_BACKEND,
    FALLBACKS,
    backend_name,
    check_backend,
)
from raitner.io.registry import load_benchmark
from raitner.prompts import get_template

EN = get_template("ra-it-en-v1")


def test_backend_names() -> None:
    assert BACKENDS == ("hf", "hf-prefix", "vllm")
    assert DEFAULT_BACKEND in BACKENDS
    assert check_backend(None) == DEFAULT_BACKEND
    with pytest.raises(ValueError, match="unknown backend 'fast'"):
        check_backend("fast")
    assert FALLBACKS == {"hf-prefix": "hf"}

    class OwnBackend:  # a backend given to OpenNER directly: the name asked for stands
        name = "mine"

    assert backend_name(OwnBackend(), "hf") == "hf" and backend_name(object()) is None


# --------------------------------------------------------------------------- with a model


def load(folder: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)


def test_make_backend_builds_each_kind(lively_model_dir: Path) -> None:
    pytest.importorskip("xgrammar")
    from raitner.errors import RaitnerError
    from raitner.infer.backends import HFBackend
    from raitner.infer.constrained import JsonListConstraint
    from raitner.infer.select import make_backend, with_constrained

    model, tokenizer = load(lively_model_dir)
    plain = make_backend("hf", model, tokenizer, batch_size=3, stop_tokens=("<|im_end|>",))
    assert type(plain) is HFBackend and plain.batch_size == 3
    assert plain.logits_processor_factory is None and plain.stop_tokens == ("<|im_end|>",)
    constrained = make_backend("hf", model, tokenizer, constrained=True)
    assert isinstance(constrained.logits_processor_factory, JsonListConstraint)
    assert set(constrained.logits_processor_factory.stop_token_ids) == set(
        constrained.stop_token_ids()
    )
    switched = with_constrained(plain, True)
    assert switched is not plain and switched.model is plain.model
    assert plain.logits_processor_factory is None  # the original is untouched
    assert with_constrained(switched, True) is switched
    assert with_constrained(switched, False).logits_processor_factory is None
    try:
        from raitner.infer.prefix_backend import PrefixReuseHFBackend
    except ImportError:
        pass
    else:
        fast = make_backend("hf-prefix", model, tokenizer, constrained=True)
        assert isinstance(fast, PrefixReuseHFBackend)
        assert isinstance(fast.logits_processor_factory, JsonListConstraint)
    with pytest.raises(TypeError, match="vLLM"):
        make_backend("hf", model, tokenizer, gpu_memory_utilization=0.5)
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(RaitnerError, match="vLLM"):
            make_backend("vllm", str(lively_model_dir), None)


def test_from_pretrained_backend_and_constrained(lively_model_dir: Path) -> None:
    pytest.importorskip("xgrammar")
    texts = ["Barack Obama visited Paris in 2009 .", "张三在北京工作。"]
    labels = ["person", "location", "date"]
    default = OpenNER.from_pretrained(lively_model_dir, max_new_tokens=12)
    assert (default.backend_name, default.constrained) == (DEFAULT_BACKEND, False)
    from test_constrained import check_answer

    ner = OpenNER.from_pretrained(
        lively_model_dir, backend="hf", constrained=True, max_new_tokens=30
    )
    assert (ner.backend_name, ner.constrained) == ("hf", True)
    for prediction in ner.predict(texts, labels):
        for answer in prediction.answers:
            check_answer(answer.answer)
    free = ner.with_constrained(False)
    assert free.constrained is False and ner.constrained is True
    assert free.backend.model is ner.backend.model and free.template is ner.template
    reference = OpenNER.from_pretrained(lively_model_dir, backend="hf", max_new_tokens=30)
    assert free.raw_answers(texts, labels) == reference.raw_answers(texts, labels)
    with pytest.raises(ValueError, match="unknown backend"):
        OpenNER.from_pretrained(lively_model_dir, backend="fast")


def test_from_model_takes_the_same_options(lively_model_dir: Path) -> None:
    pytest.importorskip("xgrammar")
    model, tokenizer = load(lively_model_dir)
    ner = OpenNER.from_model(model, tokenizer, backend="hf", constrained=True, max_new_tokens=8)
    assert (ner.backend_name, ner.constrained) == ("hf", True)
    for answers in ner.raw_answers(["Paris and Rome"], ["location"]):
        assert all(answer.startswith("[") for answer in answers.values())
    with pytest.raises(ValueError, match="from_pretrained"):
        OpenNER.from_model(model, tokenizer, backend="vllm")


def test_cli_extract_and_predict_accept_the_flags(lively_model_dir: Path, tmp_path, capsys):
    pytest.importorskip("xgrammar")
    model = ["--model", str(lively_model_dir), "--max-new-tokens", "8"]
    text = "Barack Obama visited Paris ."
    args = ["extract", text, "--labels", "person,location", "--backend", "hf", "--constrained"]
    assert main([*args, *model, "--show-answers"]) == 0
    answers = re.findall(r"^  (?:person|location): (.*)$", capsys.readouterr().err, re.M)
    assert len(answers) == 2 and all(answer.startswith("[") for answer in answers)

    source = tmp_path / "texts.jsonl"
    source.write_text(json.dumps({"text": text}) + "\n")
    output = tmp_path / "out.jsonl"
    args = ["predict", str(source), "-o", str(output), "--labels", "person", "--constrained"]
    assert main([*args, *model, "--backend", "hf"]) == 0
    (record,) = [json.loads(line) for line in output.read_text().splitlines()]
    assert record["answers"]["person"].startswith("[")


def test_cli_rejects_unknown_backend(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["extract", "text", "--labels", "x", "--backend", "fast"])
    assert "invalid choice: 'fast'" in capsys.readouterr().err


def _eval_args(model: Path, data_root: Path, *extra: str) -> list[str]:
    """`raitner eval` on 2 CrossNER-AI test texts with the given model and data root."""
    args = ["eval", "--benchmarks", "crossner_ai", "--limit", "2", "--model", str(model)]
    return [*args, "--data-root", str(data_root), *extra]


def test_cli_eval_both_reports_free_and_constrained(
    lively_model_dir: Path, tmp_path, data_root, capsys
) -> None:
    pytest.importorskip("xgrammar")
    out = tmp_path / "eval"
    args = _eval_args(lively_model_dir, data_root, "--max-new-tokens", "6")
    args += ["--backend", "hf", "--constrained", "both", "-o", str(out)]
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["backend"] == "hf"
    assert report["settings"]["constrained"] == "both"
    names = [row["name"] for row in report["rows"]]
    for metric in ("UniNER F1", "RA-IT F1", "span F1"):
        assert f"{lively_model_dir} ({metric}, free)" in names
        assert f"{lively_model_dir} ({metric}, constrained)" in names
    assert set(report["unparseable"]) == {"free", "constrained"}
    for decoding in ("free", "constrained"):
        counts = report["unparseable"][decoding]["crossner_ai"]
        assert counts["queries"] > 0 and counts["answers"] == counts["queries"]
    markdown = (out / "report.md").read_text()
    assert "## Unparseable answers" in markdown
    assert "| free | UniNER rule |" in markdown and "| constrained | lenient parser |" in markdown
    for name, constrained in (
        ("crossner_ai.jsonl", False),
        ("crossner_ai.constrained.jsonl", True),
    ):
        header = json.loads((out / "predictions" / name).read_text().splitlines()[0])
        assert header["settings"]["backend"] == "hf"
        assert header["settings"]["constrained"] is constrained
    constrained_records = (out / "predictions" / "crossner_ai.constrained.jsonl").read_text()
    for line in constrained_records.splitlines()[1:]:
        for answer in json.loads(line)["answers"].values():
            assert answer.startswith("[")
    assert "(UniNER F1, constrained)" in capsys.readouterr().out


# --------------------------------------------------------------------------- runner, scripted


class GoldBackend:
    """Answers with the gold mentions; constrained answers are marked so that each decoding's
    predictions can be told apart. Switches decoding with ``with_constrained``."""

    def __init__(self, examples, constrained=False, calls=None):
        self.gold = {ex.text: ex for ex in examples}
        self.constrained = constrained
        self.calls = calls if calls is not None else {False: 0, True: 0}

    def with_constrained(self, constrained):
        return GoldBackend(self.gold.values(), constrained, self.calls)

    def generate(self, conversations, max_new_tokens):
        answers = []
        for messages in conversations:
            self.calls[self.constrained] += 1
            text = messages[-3]["content"][len("Text: ") :]
            label = re.fullmatch(r"What describes (.*) in the text\?", messages[-1]["content"])[1]
            mentions = self.gold[text].mentions(label)
            # free decoding rambles before the list (the UniNER rule finds no list then)
            prefix = "" if self.constrained else "Sure: "
            answers.append(prefix + EN.render_answer(mentions))
        return answers


def test_runner_caches_per_backend_and_decoding(tmp_path, data_root) -> None:
    gold = load_benchmark("crossner_ai", "test", data_root)
    backend = GoldBackend(gold)
    ner = OpenNER(backend, EN, max_text_tokens=None)
    ner.backend_name = "hf"
    settings = EvalSettings(benchmarks=["crossner_ai"], limit=5, seed=1, model="gold")

    table = run_evaluation(ner, settings, tmp_path, data_root=data_root, show_progress=False)
    asked = backend.calls[False]
    assert asked > 0 and backend.calls[True] == 0
    assert table["settings"]["backend"] == "hf" and table["settings"]["constrained"] is False
    assert [row["name"] for row in table["rows"]][0] == "gold (UniNER F1)"

    both = EvalSettings(
        benchmarks=["crossner_ai"], limit=5, seed=1, model="gold", constrained="both"
    )
    table = run_evaluation(ner, both, tmp_path, data_root=data_root, show_progress=False)
    assert backend.calls == {False: asked, True: asked}  # free reused, constrained predicted
    rows = {row["name"]: row for row in table["rows"]}
    assert rows["gold (UniNER F1, constrained)"]["scores"]["crossner_ai"] == 100.0
    assert rows["gold (RA-IT F1, free)"]["scores"]["crossner_ai"] == 100.0
    free_uniner = rows["gold (UniNER F1, free)"]["results"]["crossner_ai"]
    assert free_uniner["n_unparseable"] == free_uniner["n_queries"]
    counts = table["unparseable"]
    assert counts["free"]["crossner_ai"]["uniner"] == asked
    assert counts["constrained"]["crossner_ai"]["uniner"] == 0
    assert counts["free"]["crossner_ai"]["lenient"] == 0  # the lenient parser reads past prose
    assert "free vs constrained" in table["markdown"]

    run_evaluation(ner, both, tmp_path, data_root=data_root, show_progress=False)
    assert backend.calls == {False: asked, True: asked}  # both decodings cached

    ner.backend_name = "hf-prefix"  # another backend: nothing cached applies
    run_evaluation(ner, settings, tmp_path, data_root=data_root, show_progress=False)
    assert backend.calls == {False: 2 * asked, True: asked}

    with pytest.raises(ValueError, match="the model uses 'hf-prefix'"):
        run_evaluation(
            ner,
            EvalSettings(benchmarks=["crossner_ai"], limit=5, backend="vllm"),
            tmp_path,
            data_root=data_root,
            show_progress=False,
        )
    # a model that fell back from hf-prefix to hf is recorded (and cached) as hf
    ner.backend_name = "hf"
    fell_back = replace(settings, backend="hf-prefix")
    table = run_evaluation(ner, fell_back, tmp_path, data_root=data_root, show_progress=False)
    assert table["settings"]["backend"] == "hf"
    assert backend.calls == {False: 3 * asked, True: asked}  # the cache held hf-prefix's
    run_evaluation(ner, settings, tmp_path, data_root=data_root, show_progress=False)
    assert backend.calls == {False: 3 * asked, True: asked}  # the same key as plain hf
    with pytest.raises(ValueError, match="settings name backend 'hf', the model uses 'hf-prefix'"):
        ner.backend_name = "hf-prefix"  # no fallback runs the other way
        run_evaluation(
            ner, replace(settings, backend="hf"), tmp_path, data_root=data_root, show_progress=False
        )
    with pytest.raises(ValueError, match="constrained must be"):
        run_evaluation(
            ner,
            EvalSettings(benchmarks=["crossner_ai"], limit=5, constrained="yes"),
            tmp_path,
            data_root=data_root,
            show_progress=False,
        )


def test_lenient_status_of_a_cut_list() -> None:
    """What --max-new-tokens leaves of a constrained list, as the docs describe it."""
    assert parse_mentions('["Barack Obama", "Par').status is AnswerStatus.REPAIRED
    assert parse_mentions('["Barack Obama", "Par').mentions == ("Barack Obama",)
    assert parse_mentions('["Bar').status is AnswerStatus.UNPARSEABLE
    assert parse_mentions("[").status is AnswerStatus.UNPARSEABLE


def test_cli_eval_with_a_pool_encodes_through_the_embedding_cache(
    lively_model_dir: Path, tmp_path, data_root, monkeypatch, capsys
) -> None:
    """`raitner eval --examples pool` keeps pool and query vectors in $RAITNER_CACHE: a second
    run over the same texts writes no new shard and gives the same report."""
    monkeypatch.setenv("RAITNER_CACHE", str(tmp_path / "cache"))
    args = _eval_args(lively_model_dir, data_root, "--max-new-tokens", "4")
    args += ["--examples", "pool", "--pool-split", "train", "--pool-size", "5", "--k", "1"]

    def shards() -> list[Path]:
        return sorted((tmp_path / "cache" / "embeddings").glob("*/shard-*.keys.npy"))

    assert main([*args, "-o", str(tmp_path / "first")]) == 0
    written = shards()
    assert written, "the first run wrote no vectors to the cache"
    import numpy as np

    assert sum(len(np.load(path)) for path in written) >= 5 + 2  # the pool and the two texts
    assert main([*args, "-o", str(tmp_path / "second")]) == 0
    assert shards() == written
    first = json.loads((tmp_path / "first" / "report.json").read_text())
    second = json.loads((tmp_path / "second" / "report.json").read_text())
    assert first["rows"] == second["rows"]
    assert first["settings"]["examples"] == "pool"
