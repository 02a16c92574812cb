"""Study configs of ``raitner reproduce``: what to train, how to evaluate it, what to compare.

A config is a YAML (or JSON) mapping. Every key is checked: an unknown one is an error naming
where it is and the keys allowed there. Sketch (``configs/reproduce/*.yaml`` are full ones)::

    name: en                      # names the results folder
    language: en
    data_root: null               # default: --data-root, else $RAITNER_DATA
    seeds: [1, 2]                 # each seed: its own data subset, build and training run
    base_model: default           # the embedded SmolLM2-135M-Instruct, or an HF id / folder
    embedder: default             # retrieval embedder: default (MiniLM) | hashing | an ST id
    metric: ra_it                 # ra_it | uniner | span: the F1 that is compared
    sizes: {small: 500, main: 1000}          # named data sizes: the one place to scale
    mixes:                        # training mixes: source -> weight
      open: {pile_ner_sample:validation: 4, conll2003:train: 1}
    negatives: {probability: 0.5, shuffle: true, use_label_set: false}
    train: {num_train_epochs: 3, per_device_train_batch_size: 8}   # TrainConfig fields
    eval: {benchmarks: [crossner_ai, cmeee:dev], split: test, limit: 50, backend: hf-prefix}
    verdict: {single_seed_margin: 2.0, min_margin: 0.5, confidence: 0.95, resamples: 2000}
    recipes:                      # how a model is trained
      vanilla: {mode: vanilla}
      nn: {mode: ra-it, strategy: nn, k: 2}
    inference:                    # how a model is asked
      none: {examples: none}
      out_bm25: {examples: out_domain, pool: training, strategy: nn_bm25}
      in_50: {examples: in_domain, pool_size: 50}
    studies:
      - name: data_size
        finding: RA-IT beats vanilla IT at every data size.
        source: Table 1
        arms:
          - {name: vanilla-500, recipe: vanilla, size: small, paper: 53.95}
          - {name: ra-it-500, recipe: nn, size: small, paper: 55.80}
        comparisons:
          - {baseline: vanilla-500, treatment: ra-it-500, expect: higher}

Data of a recipe: ``size`` conversations drawn from its mix (default: the first mix), split
over the sources in proportion to their weights (largest remainders), each source's share a
seeded draw (nested: the first n of one seeded permutation, so a smaller size is a subset of a
larger one). With sampled negatives (``use_label_set: false``) texts without entities would be
left out of the dataset, so they are removed before drawing: ``size`` is then exactly the number
of conversations. A recipe may instead list explicit ``sources`` (``BENCH:split@N``, ``.jsonl``,
``sample:NAME``), used as given.

Zero-shot protocol: a benchmark marked evaluation-only (CrossNER, MIT) or evaluated anywhere in
the config (or sharing texts with one that is) is refused in a training mix.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raitner.errors import RaitnerError

MODES = ("vanilla", "ra-it", "base")
EXAMPLES = ("none", "out_domain", "in_domain")
METRICS = ("ra_it", "uniner", "span")
EXPECTS = ("higher", "lower")
PLOTS = ("bars", "lines")
#: pool value of an out-domain inference that means "the model's own training examples"
TRAINING_POOL = "training"

#: Benchmarks that hold (some of) the same texts: training on one of a group while evaluating
#: on another is not zero-shot.
SAME_TEXTS: tuple[frozenset[str], ...] = (
    frozenset({"msra", "msra_bmes"}),
    frozenset({"weibo", "weibo_v1"}),
    frozenset({"cmeee", "cmeee_v1"}),
    frozenset({"boson", "boson_raw"}),
    frozenset({"conll2003", "conllpp"}),
    frozenset({"peoples_daily", "peoples_daily_pos"}),
    frozenset({"mit_restaurant", "uniner_eval_mit_restaurant"}),
    *(
        frozenset({f"crossner_{d}", f"uniner_eval_crossner_{d}"})
        for d in ("ai", "literature", "music", "politics", "science")
    ),
)

#: TrainConfig fields the runner sets itself.
RESERVED_TRAIN_KEYS = ("datasets", "output_dir", "base_model", "seed")

_TOP_KEYS = (
    "name",
    "description",
    "language",
    "data_root",
    "seeds",
    "base_model",
    "embedder",
    "metric",
    "sizes",
    "mixes",
    "negatives",
    "train",
    "eval",
    "verdict",
    "recipes",
    "inference",
    "studies",
)
_EVAL_KEYS = (
    "benchmarks",
    "split",
    "limit",
    "seed",
    "batch_size",
    "max_new_tokens",
    "max_text_tokens",
    "exclude_types",
    "pool_split",
    "device",
    "backend",
    "constrained",
    "close_lists",
    "empty_bias",
)
_NEGATIVE_KEYS = ("probability", "shuffle", "use_label_set")
_RECIPE_KEYS = (
    "mode",
    "strategy",
    "k",
    "pool_k",
    "bm25_threshold",
    "mixed_ratio",
    "mix",
    "sources",
    "negatives",
    "template",
    "label",
)
_INFERENCE_KEYS = (
    "examples",
    "pool",
    "pool_size",
    "strategy",
    "k",
    "pool_k",
    "bm25_threshold",
    "label",
)
_STUDY_KEYS = (
    "name",
    "title",
    "finding",
    "source",
    "seeds",
    "size",
    "inference",
    "metric",
    "eval",
    "plot",
    "arms",
    "comparisons",
)
_ARM_KEYS = ("name", "recipe", "size", "inference", "paper", "paper_note", "label")
_COMPARISON_KEYS = ("baseline", "treatment", "expect", "paper", "note")
_VERDICT_KEYS = ("single_seed_margin", "min_margin", "confidence", "resamples")


class ReproduceConfigError(RaitnerError, ValueError):
    """A study config is invalid; the message says where and what is allowed."""


# ------------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class NegativeSettings:
    probability: float = 0.5
    shuffle: bool = True
    use_label_set: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "probability": self.probability,
            "shuffle": self.shuffle,
            "use_label_set": self.use_label_set,
        }


@dataclass(frozen=True)
class EvalConfig:
    benchmarks: tuple[str, ...]
    split: str = "test"
    limit: int | None = 50
    seed: int = 42
    batch_size: int = 16
    max_new_tokens: int = 128
    max_text_tokens: int | None = 256
    exclude_types: tuple[str, ...] = ("misc",)
    pool_split: str = "train"
    device: str | None = None
    #: generation backend (hf, hf-prefix, vllm; None = the library's default): how answers
    #: are computed, not what they are, so not part of an evaluation's identity
    backend: str | None = None
    #: answers constrained to a JSON list of strings (part of an evaluation's identity)
    constrained: bool = False
    #: list answers ended at their first repeated item and closed when cut
    #: (:mod:`raitner.infer.list_ending`); None: as the model decodes (``raitner.json``), which
    #: for a model trained here is off. Part of an evaluation's identity when set.
    close_lists: bool | None = None
    #: bias for the empty answer (:mod:`raitner.infer.empty_bias`); None: the model's own, 0 for
    #: a model trained here. Part of an evaluation's identity when set.
    empty_bias: float | None = None


@dataclass(frozen=True)
class Recipe:
    name: str
    mode: str
    strategy: str = "nn"
    k: int = 2
    pool_k: int = 128
    bm25_threshold: float = 20.0
    mixed_ratio: float = 0.8
    mix: str | None = None
    sources: tuple[str, ...] | None = None
    negatives: NegativeSettings = field(default_factory=NegativeSettings)
    template: str | None = None
    label: str = ""

    @property
    def trains(self) -> bool:
        return self.mode != "base"

    def describe(self) -> str:
        if self.label:
            return self.label
        if self.mode == "base":
            return "untuned base model"
        if self.mode == "vanilla":
            return "vanilla IT"
        detail = f"{self.strategy}, k={self.k}"
        if self.strategy == "mixed":
            detail += f", NN ratio {self.mixed_ratio:g}"
        return f"RA-IT ({detail})"


@dataclass(frozen=True)
class Inference:
    name: str
    examples: str = "none"
    #: out-domain: ``"training"`` (the model's training examples) or source specs
    pool: str | tuple[str, ...] | None = None
    pool_size: int | None = None
    strategy: str | None = None
    k: int | None = None
    pool_k: int | None = None
    bm25_threshold: float | None = None
    label: str = ""

    def describe(self) -> str:
        if self.label:
            return self.label
        if self.examples == "none":
            return "no examples"
        how = self.strategy or "training strategy"
        if self.examples == "in_domain":
            size = "full" if self.pool_size is None else str(self.pool_size)
            return f"in-domain pool ({size}), {how}"
        return f"out-domain pool, {how}"


@dataclass(frozen=True)
class Arm:
    name: str
    recipe: str
    size: int | None
    inference: str
    paper: float | None = None
    paper_note: str = ""
    label: str = ""


@dataclass(frozen=True)
class Comparison:
    baseline: str
    treatment: str
    expect: str
    paper: tuple[float, float] | None = None
    note: str = ""


@dataclass(frozen=True)
class Study:
    name: str
    title: str
    finding: str
    source: str
    seeds: tuple[int, ...]
    metric: str
    eval: EvalConfig
    plot: str
    arms: tuple[Arm, ...]
    comparisons: tuple[Comparison, ...]

    def arm(self, name: str) -> Arm:
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise KeyError(name)


@dataclass(frozen=True)
class VerdictSettings:
    #: with one seed, |difference| must exceed this many F1 points
    single_seed_margin: float = 2.0
    #: with several seeds, |difference| must exceed the seed spread and at least this
    min_margin: float = 0.5
    #: level of the paired bootstrap interval over test texts that must exclude 0
    confidence: float = 0.95
    #: bootstrap resamples; 0 turns the bootstrap off (the margins alone decide)
    resamples: int = 2000


@dataclass(frozen=True)
class StudyConfig:
    name: str
    description: str
    language: str
    data_root: str | None
    seeds: tuple[int, ...]
    base_model: str
    embedder: str
    metric: str
    sizes: Mapping[str, int]
    mixes: Mapping[str, Mapping[str, float]]
    train: Mapping[str, Any]
    eval: EvalConfig
    verdict: VerdictSettings
    recipes: Mapping[str, Recipe]
    inference: Mapping[str, Inference]
    studies: tuple[Study, ...]
    #: the file it was read from (None when built from a mapping)
    path: Path | None = None
    #: the ``--set KEY=VALUE`` overrides applied to the file, in order (for the report)
    overrides: tuple[str, ...] = ()

    def study(self, name: str) -> Study:
        for study in self.studies:
            if study.name == name:
                return study
        raise ReproduceConfigError(
            f"no study {name!r} in {self.name}; studies: {', '.join(s.name for s in self.studies)}"
        )


# ----------------------------------------------------------------------------- reading


def read_config(
    path: str | Path, overrides: Sequence[str] = (), *, check_data: bool = True
) -> StudyConfig:
    """Read and check a config file; ``overrides`` are ``KEY.PATH=VALUE`` (``--set``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ReproduceConfigError(f"cannot read the study config {path}: {error}") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ReproduceConfigError(
                f"{path}: reading YAML needs PyYAML (pip install pyyaml); or write it as JSON"
            ) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ReproduceConfigError(f"{path}: not valid YAML: {error}") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ReproduceConfigError(f"{path}: not valid JSON: {error}") from None
    data = apply_overrides(data, overrides)
    config = parse_config(data, source=str(path), base_dir=path.parent, check_data=check_data)
    return dataclasses.replace(config, overrides=tuple(overrides))


def _parse_scalar(text: str) -> Any:
    try:
        import yaml

        return yaml.safe_load(text)
    except ImportError:
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    except Exception:  # a value YAML cannot read is taken as the string itself
        return text


def apply_overrides(data: Any, overrides: Sequence[str]) -> Any:
    """``["base_model=/x", "sizes.main=200", "studies.0.seeds=[1]"]`` applied to a copy."""
    data = copy.deepcopy(data)
    for override in overrides:
        key, sep, raw = override.partition("=")
        if not sep or not key.strip():
            raise ReproduceConfigError(
                f"--set {override!r}: expected KEY=VALUE (e.g. sizes.main=200)"
            )
        parts = key.strip().split(".")
        if not isinstance(data, dict):
            raise ReproduceConfigError("the config is not a mapping; --set cannot apply")
        node: Any = data
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            where = ".".join(parts[: depth + 1])
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ReproduceConfigError(
                        f"--set {key}: {where} is not an index of a list of {len(node)}"
                    )
                index: Any = int(part)
            elif isinstance(node, dict):
                index = part
            else:
                raise ReproduceConfigError(f"--set {key}: {where} is inside a plain value")
            if last:
                node[index] = _parse_scalar(raw)
            else:
                if isinstance(node, dict) and node.get(index) is None:
                    node[index] = {}
                node = node[index]
    return data


class _Where:
    """Builds error messages that say where in the config the problem is."""

    def __init__(self, source: str | None) -> None:
        self.source = source

    def error(self, where: str, message: str) -> ReproduceConfigError:
        prefix = f"{self.source}: " if self.source else ""
        return ReproduceConfigError(f"{prefix}{where}: {message}")

    def mapping(
        self, where: str, data: Any, allowed: Sequence[str], required: Sequence[str] = ()
    ) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self.error(where, f"expected a mapping, got {type(data).__name__}")
        unknown = sorted(str(key) for key in data if key not in allowed)
        if unknown:
            raise self.error(
                where, f"unknown key(s) {', '.join(unknown)}; known: {', '.join(allowed)}"
            )
        missing = [key for key in required if data.get(key) is None]
        if missing:
            raise self.error(where, f"missing {', '.join(missing)}")
        return data

    def integer(self, where: str, value: Any, minimum: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(where, f"expected a whole number, got {value!r}")
        if minimum is not None and value < minimum:
            raise self.error(where, f"must be >= {minimum}, got {value}")
        return value

    def number(self, where: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(where, f"expected a number, got {value!r}")
        return float(value)

    def text(self, where: str, value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise self.error(where, f"expected a non-empty string, got {value!r}")
        return value

    def choice(self, where: str, value: Any, choices: Sequence[str]) -> str:
        if value not in choices:
            raise self.error(where, f"must be one of {', '.join(choices)}; got {value!r}")
        return value

    def strings(self, where: str, value: Any) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise self.error(where, f"expected a non-empty list of strings, got {value!r}")
        return tuple(value)

    def switch(self, where: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self.error(where, f"expected true or false, got {value!r}")
        return value

    def seeds(self, where: str, value: Any) -> tuple[int, ...]:
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list) or not value:
            raise self.error(where, f"expected a non-empty list of integers, got {value!r}")
        seeds = tuple(self.integer(f"{where}[{i}]", v, 0) for i, v in enumerate(value))
        if len(set(seeds)) != len(seeds):
            raise self.error(where, f"seeds repeat: {list(seeds)}")
        return seeds


def parse_config(
    data: Any,
    *,
    source: str | None = None,
    base_dir: Path | None = None,
    check_data: bool = True,
) -> StudyConfig:
    """Check a config mapping and resolve its references; raise :class:`ReproduceConfigError`.

    ``check_data`` also checks the named benchmarks and the zero-shot protocol (needs the
    benchmark registry, not the data files).
    """
    w = _Where(source)
    top = w.mapping("config", data, _TOP_KEYS, ("name", "language", "recipes", "studies"))
    name = w.text("name", top["name"])
    language = w.choice("language", top["language"], ("en", "zh"))
    data_root = top.get("data_root")
    if data_root is not None:
        data_root = w.text("data_root", data_root)
        if base_dir is not None and not Path(data_root).expanduser().is_absolute():
            data_root = str((base_dir / data_root).resolve())
    seeds = w.seeds("seeds", top.get("seeds", [42]))
    base_model = w.text("base_model", top.get("base_model", "default"))
    embedder = w.text("embedder", top.get("embedder", "default"))
    metric = w.choice("metric", top.get("metric", "ra_it"), METRICS)

    sizes_raw = top.get("sizes") or {}
    if not isinstance(sizes_raw, dict):
        raise w.error("sizes", "expected a mapping of name: number of conversations")
    sizes = {str(k): w.integer(f"sizes.{k}", v, 1) for k, v in sizes_raw.items()}

    mixes_raw = top.get("mixes") or {}
    if not isinstance(mixes_raw, dict):
        raise w.error("mixes", "expected a mapping of mix name: {source: weight}")
    mixes: dict[str, dict[str, float]] = {}
    for mix_name, mix in mixes_raw.items():
        where = f"mixes.{mix_name}"
        if isinstance(mix, list):
            mix = dict.fromkeys(w.strings(where, mix), 1)
        if not isinstance(mix, dict) or not mix:
            raise w.error(where, "expected a non-empty mapping of source: weight (or a list)")
        weights = {}
        for spec, weight in mix.items():
            value = w.number(f"{where}.{spec}", weight)
            if value <= 0:
                raise w.error(f"{where}.{spec}", f"a weight must be > 0, got {weight!r}")
            if "@" in str(spec) and not str(spec).endswith(".jsonl"):
                raise w.error(
                    f"{where}.{spec}", "a mix source takes no @N: its share comes from the size"
                )
            weights[str(spec)] = value
        mixes[str(mix_name)] = weights

    negatives = _negatives(w, "negatives", top.get("negatives") or {}, NegativeSettings())
    train = _train_settings(w, top.get("train") or {}, base_model, seeds[0])
    eval_config = _eval(w, "eval", top.get("eval") or {}, None)
    verdict_raw = w.mapping("verdict", top.get("verdict") or {}, _VERDICT_KEYS)
    verdict = VerdictSettings(
        single_seed_margin=w.number(
            "verdict.single_seed_margin", verdict_raw.get("single_seed_margin", 2.0)
        ),
        min_margin=w.number("verdict.min_margin", verdict_raw.get("min_margin", 0.5)),
        confidence=w.number("verdict.confidence", verdict_raw.get("confidence", 0.95)),
        resamples=w.integer("verdict.resamples", verdict_raw.get("resamples", 2000), minimum=0),
    )
    if not 0 < verdict.confidence < 1:
        raise w.error(
            "verdict.confidence", f"expected a level between 0 and 1, got {verdict.confidence}"
        )

    recipes_raw = top["recipes"]
    if not isinstance(recipes_raw, dict) or not recipes_raw:
        raise w.error("recipes", "expected a non-empty mapping of recipe name: settings")
    recipes = {
        str(key): _recipe(w, str(key), value, negatives, mixes)
        for key, value in recipes_raw.items()
    }
    inference_raw = top.get("inference") or {"none": {"examples": "none"}}
    if not isinstance(inference_raw, dict):
        raise w.error("inference", "expected a mapping of name: inference settings")
    inference = {str(key): _inference(w, str(key), value) for key, value in inference_raw.items()}

    studies_raw = top["studies"]
    if not isinstance(studies_raw, list) or not studies_raw:
        raise w.error("studies", "expected a non-empty list of studies")
    studies = []
    for index, raw in enumerate(studies_raw):
        studies.append(_study(w, index, raw, seeds, metric, eval_config, sizes, recipes, inference))
    names = [s.name for s in studies]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise w.error("studies", f"study names repeat: {', '.join(duplicates)}")

    config = StudyConfig(
        name=name,
        description=str(top.get("description") or ""),
        language=language,
        data_root=data_root,
        seeds=seeds,
        base_model=base_model,
        embedder=embedder,
        metric=metric,
        sizes=sizes,
        mixes=mixes,
        train=train,
        eval=eval_config,
        verdict=verdict,
        recipes=recipes,
        inference=inference,
        studies=tuple(studies),
        path=None if source is None else Path(source),
    )
    if check_data:
        check_benchmarks(config, w)
    return config


def _negatives(w: _Where, where: str, raw: Any, default: NegativeSettings) -> NegativeSettings:
    raw = w.mapping(where, raw, _NEGATIVE_KEYS)
    probability = w.number(f"{where}.probability", raw.get("probability", default.probability))
    if not 0 <= probability <= 1:
        raise w.error(f"{where}.probability", f"must be in [0, 1], got {probability}")
    return NegativeSettings(
        probability=probability,
        shuffle=w.switch(f"{where}.shuffle", raw.get("shuffle", default.shuffle)),
        use_label_set=w.switch(
            f"{where}.use_label_set", raw.get("use_label_set", default.use_label_set)
        ),
    )


def _train_settings(w: _Where, raw: Any, base_model: str, seed: int) -> dict[str, Any]:
    from raitner.train.config import TrainConfig, TrainConfigError

    if not isinstance(raw, dict):
        raise w.error("train", f"expected a mapping of training settings, got {type(raw).__name__}")
    settings = {str(k).replace("-", "_"): v for k, v in raw.items()}
    reserved = sorted(set(settings) & set(RESERVED_TRAIN_KEYS))
    if reserved:
        raise w.error(
            "train",
            f"{', '.join(reserved)} cannot be set here: the runner sets the datasets and "
            "output folder, base_model is a top-level key and the seed comes from seeds",
        )
    try:
        TrainConfig.from_dict(
            {
                **settings,
                "datasets": ["x"],
                "output_dir": "x",
                "base_model": base_model,
                "seed": seed,
            }
        )
    except TrainConfigError as error:
        raise w.error("train", str(error)) from None
    return settings


def _eval(w: _Where, where: str, raw: Any, base: EvalConfig | None) -> EvalConfig:
    raw = w.mapping(where, raw, _EVAL_KEYS)
    if base is None and not raw.get("benchmarks"):
        raise w.error(where, "missing benchmarks (the evaluation benchmarks)")
    values: dict[str, Any] = {} if base is None else dict(base.__dict__)
    for key, value in raw.items():
        path = f"{where}.{key}"
        if key == "exclude_types":
            values[key] = () if value in (None, []) else w.strings(path, value)
        elif key == "benchmarks":
            values[key] = w.strings(path, value)
        elif key in ("limit", "max_text_tokens"):
            values[key] = None if value is None else w.integer(path, value, 1)
        elif key in ("seed",):
            values[key] = w.integer(path, value, 0)
        elif key in ("batch_size", "max_new_tokens"):
            values[key] = w.integer(path, value, 1)
        elif key in ("device", "backend"):
            values[key] = None if value is None else w.text(path, value)
        elif key == "constrained":
            values[key] = w.switch(path, value)
        elif key == "close_lists":
            values[key] = None if value is None else w.switch(path, value)
        elif key == "empty_bias":
            values[key] = None if value is None else w.number(path, value)
        else:
            values[key] = w.text(path, value)
    return EvalConfig(**values)


def _retrieval_check(w: _Where, where: str, **settings: Any) -> None:
    from raitner.retrieval.strategies import RetrievalConfig

    try:
        RetrievalConfig(**{k: v for k, v in settings.items() if v is not None})
    except (RaitnerError, ValueError) as error:
        raise w.error(where, str(error)) from None


def _recipe(
    w: _Where,
    name: str,
    raw: Any,
    negatives: NegativeSettings,
    mixes: Mapping[str, Any],
) -> Recipe:
    where = f"recipes.{name}"
    raw = w.mapping(where, raw, _RECIPE_KEYS, ("mode",))
    mode = w.choice(f"{where}.mode", raw["mode"], MODES)
    if mode == "base":
        extra = sorted(set(raw) - {"mode", "label", "template"})
        if extra:
            raise w.error(where, f"a base-model recipe trains nothing; remove {', '.join(extra)}")
        return Recipe(name=name, mode=mode, label=str(raw.get("label") or ""))
    retrieval_keys = ("strategy", "k", "pool_k", "bm25_threshold", "mixed_ratio")
    if mode == "vanilla":
        given = sorted(set(raw) & set(retrieval_keys))
        if given:
            raise w.error(where, f"vanilla IT retrieves nothing; remove {', '.join(given)}")
    strategy = raw.get("strategy", "nn")
    k = w.integer(f"{where}.k", raw.get("k", 2), 1)
    pool_k = w.integer(f"{where}.pool_k", raw.get("pool_k", 128), 1)
    threshold = w.number(f"{where}.bm25_threshold", raw.get("bm25_threshold", 20.0))
    ratio = w.number(f"{where}.mixed_ratio", raw.get("mixed_ratio", 0.8))
    if mode == "ra-it":
        _retrieval_check(
            w,
            where,
            strategy=strategy,
            k=k,
            pool_k=pool_k,
            bm25_threshold=threshold,
            mixed_nn_ratio=ratio,
        )
    sources = raw.get("sources")
    mix = raw.get("mix")
    if sources is not None and mix is not None:
        raise w.error(where, "give either mix (sized by the arm) or sources (used as given)")
    if sources is not None:
        sources = w.strings(f"{where}.sources", sources)
    else:
        if mix is None:
            if not mixes:
                raise w.error(where, "no mixes defined and no sources given")
            mix = next(iter(mixes))
        elif mix not in mixes:
            raise w.error(f"{where}.mix", f"unknown mix {mix!r}; mixes: {', '.join(mixes)}")
    return Recipe(
        name=name,
        mode=mode,
        strategy=strategy if mode == "ra-it" else "none",
        k=k if mode == "ra-it" else 0,
        pool_k=pool_k,
        bm25_threshold=threshold,
        mixed_ratio=ratio,
        mix=mix,
        sources=sources,
        negatives=_negatives(w, f"{where}.negatives", raw.get("negatives") or {}, negatives),
        template=None
        if raw.get("template") is None
        else w.text(f"{where}.template", raw["template"]),
        label=str(raw.get("label") or ""),
    )


def _inference(w: _Where, name: str, raw: Any) -> Inference:
    where = f"inference.{name}"
    raw = w.mapping(where, raw, _INFERENCE_KEYS, ("examples",))
    examples = w.choice(f"{where}.examples", raw["examples"], EXAMPLES)
    label = str(raw.get("label") or "")
    if examples == "none":
        extra = sorted(set(raw) - {"examples", "label"})
        if extra:
            raise w.error(where, f"inference without examples takes no {', '.join(extra)}")
        return Inference(name=name, examples="none", label=label)
    pool: str | tuple[str, ...] | None = None
    if examples == "out_domain":
        value = raw.get("pool", TRAINING_POOL)
        pool = TRAINING_POOL if value == TRAINING_POOL else w.strings(f"{where}.pool", value)
    elif "pool" in raw:
        raise w.error(
            f"{where}.pool",
            "an in-domain pool is the benchmark's own pool split (eval.pool_split); "
            "for other examples use examples: out_domain",
        )
    pool_size = raw.get("pool_size")
    if pool_size is not None:
        pool_size = w.integer(f"{where}.pool_size", pool_size, 1)
    k = raw.get("k")
    k = None if k is None else w.integer(f"{where}.k", k, 1)
    pool_k = raw.get("pool_k")
    pool_k = None if pool_k is None else w.integer(f"{where}.pool_k", pool_k, 1)
    threshold = raw.get("bm25_threshold")
    threshold = None if threshold is None else w.number(f"{where}.bm25_threshold", threshold)
    strategy = raw.get("strategy")
    if strategy is not None:
        if strategy == "mixed":
            raise w.error(f"{where}.strategy", "mixed is a training strategy; pick nn or random")
        _retrieval_check(w, where, strategy=strategy, k=k, pool_k=pool_k)
    return Inference(
        name=name,
        examples=examples,
        pool=pool,
        pool_size=pool_size,
        strategy=strategy,
        k=k,
        pool_k=pool_k,
        bm25_threshold=threshold,
        label=label,
    )


def _size(w: _Where, where: str, value: Any, sizes: Mapping[str, int]) -> int:
    if isinstance(value, str):
        if value not in sizes:
            known = ", ".join(sizes) or "none defined"
            raise w.error(where, f"unknown size {value!r}; sizes: {known}")
        return sizes[value]
    return w.integer(where, value, 1)


def _study(
    w: _Where,
    index: int,
    raw: Any,
    seeds: tuple[int, ...],
    metric: str,
    eval_config: EvalConfig,
    sizes: Mapping[str, int],
    recipes: Mapping[str, Recipe],
    inference: Mapping[str, Inference],
) -> Study:
    where = f"studies[{index}]"
    raw = w.mapping(where, raw, _STUDY_KEYS, ("name", "arms"))
    name = w.text(f"{where}.name", raw["name"])
    if not name.replace("_", "").replace("-", "").isalnum():
        raise w.error(f"{where}.name", f"use letters, digits, - and _ only (a file name): {name!r}")
    where = f"studies.{name}"
    study_seeds = w.seeds(f"{where}.seeds", raw["seeds"]) if "seeds" in raw else seeds
    study_metric = w.choice(f"{where}.metric", raw.get("metric", metric), METRICS)
    study_eval = _eval(w, f"{where}.eval", raw.get("eval") or {}, eval_config)
    default_size = raw.get("size")
    default_inference = raw.get("inference", "none")
    arms_raw = raw["arms"]
    if not isinstance(arms_raw, list) or not arms_raw:
        raise w.error(f"{where}.arms", "expected a non-empty list of arms")
    arms: list[Arm] = []
    for arm_index, arm_raw in enumerate(arms_raw):
        arm_where = f"{where}.arms[{arm_index}]"
        arm_raw = w.mapping(arm_where, arm_raw, _ARM_KEYS, ("name", "recipe"))
        arm_name = w.text(f"{arm_where}.name", arm_raw["name"])
        arm_where = f"{where}.arms.{arm_name}"
        recipe_name = arm_raw["recipe"]
        if recipe_name not in recipes:
            raise w.error(
                f"{arm_where}.recipe",
                f"unknown recipe {recipe_name!r}; recipes: {', '.join(recipes)}",
            )
        recipe = recipes[recipe_name]
        size_value = arm_raw.get("size", default_size)
        size = None
        if recipe.trains and recipe.sources is None:
            if size_value is None:
                raise w.error(arm_where, f"recipe {recipe_name} draws from a mix: give a size")
            size = _size(w, f"{arm_where}.size", size_value, sizes)
        elif "size" in arm_raw:
            raise w.error(f"{arm_where}.size", f"recipe {recipe_name} takes no size")
        inference_name = arm_raw.get("inference", default_inference)
        if inference_name not in inference:
            raise w.error(
                f"{arm_where}.inference",
                f"unknown inference {inference_name!r}; inference: {', '.join(inference)}",
            )
        if recipe.mode == "base" and inference[inference_name].pool == TRAINING_POOL:
            raise w.error(arm_where, "an untrained base model has no training examples to use")
        paper = arm_raw.get("paper")
        arms.append(
            Arm(
                name=arm_name,
                recipe=recipe_name,
                size=size,
                inference=inference_name,
                paper=None if paper is None else w.number(f"{arm_where}.paper", paper),
                paper_note=str(arm_raw.get("paper_note") or ""),
                label=str(arm_raw.get("label") or ""),
            )
        )
    arm_names = [a.name for a in arms]
    duplicates = sorted({n for n in arm_names if arm_names.count(n) > 1})
    if duplicates:
        raise w.error(f"{where}.arms", f"arm names repeat: {', '.join(duplicates)}")
    comparisons = []
    for c_index, c_raw in enumerate(raw.get("comparisons") or []):
        c_where = f"{where}.comparisons[{c_index}]"
        c_raw = w.mapping(c_where, c_raw, _COMPARISON_KEYS, ("baseline", "treatment", "expect"))
        for role in ("baseline", "treatment"):
            if c_raw[role] not in arm_names:
                raise w.error(
                    f"{c_where}.{role}", f"no arm {c_raw[role]!r}; arms: {', '.join(arm_names)}"
                )
        paper = c_raw.get("paper")
        if paper is not None:
            if not isinstance(paper, list) or len(paper) != 2:
                raise w.error(f"{c_where}.paper", "expected [baseline, treatment] numbers")
            paper = (w.number(f"{c_where}.paper", paper[0]), w.number(f"{c_where}.paper", paper[1]))
        comparisons.append(
            Comparison(
                baseline=c_raw["baseline"],
                treatment=c_raw["treatment"],
                expect=w.choice(f"{c_where}.expect", c_raw["expect"], EXPECTS),
                paper=paper,
                note=str(c_raw.get("note") or ""),
            )
        )
    return Study(
        name=name,
        title=str(raw.get("title") or name),
        finding=str(raw.get("finding") or ""),
        source=str(raw.get("source") or ""),
        seeds=study_seeds,
        metric=study_metric,
        eval=study_eval,
        plot=w.choice(f"{where}.plot", raw.get("plot", "bars"), PLOTS),
        arms=tuple(arms),
        comparisons=tuple(comparisons),
    )


# ------------------------------------------------------------------- benchmarks, zero-shot


def eval_target(entry: str, default_split: str) -> tuple[str, str]:
    """An ``eval.benchmarks`` entry: ``NAME`` (the eval split) or ``NAME:SPLIT``."""
    name, sep, split = entry.partition(":")
    return name, (split if sep else default_split)


def benchmark_of(spec: str) -> str | None:
    """The benchmark a source spec names (``conll2003:train@100`` → ``conll2003``), or None for
    a file or a packaged sample."""
    from raitner.io.user_files import is_user_file
    from raitner.sources import SAMPLE_PREFIX, split_subset

    base, _count = split_subset(spec)
    if base.startswith(SAMPLE_PREFIX) or ":" not in base or is_user_file(base):
        return None
    return base.rsplit(":", 1)[0]


def _same_texts(name: str) -> set[str]:
    group = {name}
    for family in SAME_TEXTS:
        if name in family:
            group |= family
    return group


def _check_source(w: _Where, where: str, spec: str, evaluated: Mapping[str, str], language: str):
    from raitner.io.registry import get_benchmark

    name = benchmark_of(spec)
    if name is None:
        return
    try:
        benchmark = get_benchmark(name)
    except RaitnerError as error:
        raise w.error(where, str(error)) from None
    base = spec.split("@", 1)[0]
    split = base.rsplit(":", 1)[1]
    if split not in benchmark.splits:
        raise w.error(
            where, f"{name} has no split {split!r}; splits: {', '.join(benchmark.splits)}"
        )
    if benchmark.lang != language:
        raise w.error(where, f"{name} is {benchmark.lang}, the config is {language}")
    if benchmark.zero_shot_eval:
        raise w.error(
            where,
            f"{spec} is refused in a training mix: {name} is evaluation-only under the "
            "zero-shot protocol (CrossNER and MIT are never trained on; their train splits may "
            "only serve as the in-domain example pool at inference: examples: in_domain)",
        )
    clash = sorted(_same_texts(name) & set(evaluated))
    if clash:
        raise w.error(
            where,
            f"{spec} is refused in a training mix: {clash[0]} is evaluated in "
            f"{evaluated[clash[0]]}, and training on it (or on a benchmark with the same texts) "
            "would break the zero-shot protocol",
        )


def check_benchmarks(config: StudyConfig, w: _Where | None = None) -> None:
    """Evaluation benchmarks exist (with the splits used) and no training source breaks the
    zero-shot protocol."""
    from raitner.io.registry import get_benchmark

    w = w or _Where(None if config.path is None else str(config.path))
    evaluated: dict[str, str] = {}
    for study in config.studies:
        where = f"studies.{study.name}.eval.benchmarks"
        in_domain = any(
            config.inference[arm.inference].examples == "in_domain" for arm in study.arms
        )
        for entry in study.eval.benchmarks:
            name, split = eval_target(entry, study.eval.split)
            try:
                benchmark = get_benchmark(name)
            except RaitnerError as error:
                raise w.error(where, str(error)) from None
            if benchmark.lang != config.language:
                raise w.error(where, f"{name} is {benchmark.lang}, the config is {config.language}")
            if split not in benchmark.splits:
                raise w.error(
                    where,
                    f"{name} has no split {split!r} (write NAME:SPLIT for another); splits: "
                    f"{', '.join(benchmark.splits)}",
                )
            if split == study.eval.pool_split and in_domain:
                raise w.error(
                    where,
                    f"{name}: the evaluation split {split!r} is also the in-domain pool split",
                )
            if in_domain and study.eval.pool_split not in benchmark.splits:
                raise w.error(
                    where,
                    f"in-domain arms need {name}:{study.eval.pool_split} as the example pool, "
                    f"which does not exist (splits: {', '.join(benchmark.splits)}); evaluate "
                    "them on other benchmarks (the study's eval.benchmarks)",
                )
            evaluated.setdefault(name, f"study {study.name}")
    for recipe in config.recipes.values():
        where = f"recipes.{recipe.name}"
        for spec in recipe.sources or ():
            _check_source(w, f"{where}.sources", spec, evaluated, config.language)
    for mix_name, mix in config.mixes.items():
        for spec in mix:
            _check_source(w, f"mixes.{mix_name}", spec, evaluated, config.language)
    for inference in config.inference.values():
        if isinstance(inference.pool, tuple):
            for spec in inference.pool:
                name = benchmark_of(spec)
                if name is not None:
                    try:
                        get_benchmark(name)
                    except RaitnerError as error:
                        raise w.error(f"inference.{inference.name}.pool", str(error)) from None
