"""From a study config to the de-duplicated list of stages that produce its numbers.

Three kinds of stage, each identified by a hash of everything its output depends on (its
*spec*), so that two arms or studies that need the same thing share one stage:

``build``
    a training set (``raitner build``): the drawn examples, the mode, the retrieval and
    negative-sampling settings, the template, the embedder, the seed.
``train``
    a LoRA model: the dataset's hash, the base model, the training settings that change what is
    learned (not logging or checkpoint cadence), the seed.
``eval``
    one benchmark scored for one model with one inference setting: the model's hash, the split,
    the seeded subset, the questions, generation limits, the example pool and retrieval.

An arm of a study, run with one seed, is a model plus one eval stage per benchmark. Untrained
base models (recipe ``mode: base``) have no build or train stage.

Stages are ordered seed by seed (so the first seed of every study finishes before the second
starts), and a model's evaluations come right after its training (its weights stay loaded).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raitner.reproduce.config import (
    TRAINING_POOL,
    Arm,
    Recipe,
    Study,
    StudyConfig,
    eval_target,
)

#: Bumped when a stage's outputs change meaning: old folders are then not reused.
STAGE_FORMAT = 1
HASH_LENGTH = 10


def spec_hash(spec: dict[str, Any]) -> str:
    text = json.dumps(spec, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:HASH_LENGTH]


#: bytes read from each end of a file for a local model's fingerprint
_FINGERPRINT_BYTES = 1 << 20


def local_model_fingerprint(name_or_path: str) -> str | None:
    """A hash of a local model folder's (or file's) contents, or None for anything else.

    A stage names its base model by the string in the config; for an embedded name or a hub
    id that string fixes the weights, for a local path it does not (a re-exported adapter keeps
    its folder). The fingerprint — every file's relative path and size, and its first and last
    MiB — goes into the specs of the stages that use the model, so changed weights mean new
    stages instead of reused results. Reading 2 MiB per file keeps it cheap for big models.
    """
    from raitner.models import is_embedded_model

    if is_embedded_model(name_or_path):
        return None
    root = Path(name_or_path).expanduser()
    if not root.exists():
        return None
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    digest = hashlib.sha256()
    for path in files:
        relative = path.relative_to(root).as_posix() if root.is_dir() else path.name
        if relative.startswith(".") or "/." in relative or "__pycache__" in relative:
            continue
        size = path.stat().st_size
        digest.update(f"{relative}\0{size}\0".encode())
        with path.open("rb") as handle:
            digest.update(handle.read(_FINGERPRINT_BYTES))
            if size > 2 * _FINGERPRINT_BYTES:
                handle.seek(size - _FINGERPRINT_BYTES)
                digest.update(handle.read())
            elif size > _FINGERPRINT_BYTES:
                digest.update(handle.read())
    return digest.hexdigest()[:16]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-")[:60] or "x"


@dataclass
class Stage:
    kind: str  # "build" | "train" | "eval"
    id: str
    spec: dict[str, Any]
    folder: Path
    what: str
    #: train: its build stage; eval: its train stage (None for an untrained base model)
    needs: str | None = None
    #: build only: hash of what decides its examples (vanilla and RA-IT sets share it)
    examples_id: str | None = None
    #: eval only: the model to load (a train stage id, or the base model's name)
    model: str | None = None
    benchmark: str | None = None
    #: eval with the training examples as pool: the build stage whose examples are the pool
    pool_build: str | None = None
    #: studies that use this stage
    studies: list[str] = field(default_factory=list)


@dataclass
class ArmRun:
    """One arm of one study with one seed."""

    study: str
    arm: str
    seed: int
    #: train stage id, or None for an untrained base model
    train: str | None
    build: str | None
    #: benchmark → eval stage id
    evals: dict[str, str]


@dataclass
class Plan:
    config: StudyConfig
    results_dir: Path
    stages: list[Stage]
    runs: list[ArmRun]
    #: the studies this plan runs (``--only``), in config order
    studies: list[str]

    def stage(self, stage_id: str) -> Stage:
        return self._by_id[stage_id]

    def __post_init__(self) -> None:
        self._by_id = {stage.id: stage for stage in self.stages}

    def run_of(self, study: str, arm: str, seed: int) -> ArmRun | None:
        for run in self.runs:
            if (run.study, run.arm, run.seed) == (study, arm, seed):
                return run
        return None

    def counts(self) -> dict[str, int]:
        counts = {"build": 0, "train": 0, "eval": 0}
        for stage in self.stages:
            counts[stage.kind] += 1
        return counts


def distribute(size: int, weights: dict[str, float]) -> dict[str, int]:
    """``size`` split over the sources in proportion to their weights (largest remainders,
    ties broken by order)."""
    total = sum(weights.values())
    exact = {spec: size * weight / total for spec, weight in weights.items()}
    counts = {spec: int(value) for spec, value in exact.items()}
    left = size - sum(counts.values())
    order = sorted(exact, key=lambda s: (-(exact[s] - counts[s]), list(weights).index(s)))
    for spec in order[:left]:
        counts[spec] += 1
    return counts


def _train_settings(config: StudyConfig, seed: int) -> dict[str, Any]:
    """The configured training settings that change what is learned (identity of a model).

    Only the keys the config sets, normalised by ``TrainConfig`` (``5e-5`` and ``5.0e-5`` are
    one value): a field added to ``TrainConfig`` later does not change existing models' hashes.
    """
    from raitner.train.config import TrainConfig
    from raitner.train.sft import RESUMABLE_CHANGES

    resolved = TrainConfig(
        **config.train,
        datasets=["-"],
        output_dir="-",
        base_model=config.base_model,
        seed=seed,
    )
    return {
        key: getattr(resolved, key) for key in sorted(config.train) if key not in RESUMABLE_CHANGES
    }


def data_spec(config: StudyConfig, recipe: Recipe, size: int | None, seed: int) -> dict[str, Any]:
    """What decides which examples a dataset holds (shared by vanilla and RA-IT datasets)."""
    only_with_entities = not recipe.negatives.use_label_set
    if recipe.sources is not None:
        return {
            "sources": list(recipe.sources),
            "seed": seed,
            "only_with_entities": only_with_entities,
        }
    assert recipe.mix is not None and size is not None
    return {
        "mix": distribute(size, dict(config.mixes[recipe.mix])),
        "seed": seed,
        "only_with_entities": only_with_entities,
    }


def _retrieval(**settings: Any) -> dict[str, Any]:
    """Retrieval settings as a spec holds them: checked by ``RetrievalConfig``, but only the
    fields named here, so that a field added to it later changes no hash."""
    from raitner.retrieval.strategies import RetrievalConfig

    RetrievalConfig(**settings)
    return settings


def retrieval_settings(recipe: Recipe, seed: int) -> dict[str, Any] | None:
    if recipe.mode != "ra-it":
        return None
    return _retrieval(
        strategy=recipe.strategy,
        k=recipe.k,
        pool_k=recipe.pool_k,
        bm25_threshold=recipe.bm25_threshold,
        mixed_nn_ratio=recipe.mixed_ratio,
        seed=seed,
    )


def _recipe_slug(recipe: Recipe) -> str:
    if recipe.mode == "vanilla":
        return "vanilla"
    slug = f"ra-it-{recipe.strategy}-k{recipe.k}"
    if recipe.strategy == "mixed":
        slug += f"-r{recipe.mixed_ratio:g}"
    return slug


class _Planner:
    def __init__(self, config: StudyConfig, results_dir: Path) -> None:
        self.config = config
        self.results_dir = results_dir
        self.work = results_dir / "work"
        self.stages: dict[str, Stage] = {}
        self.order: list[str] = []
        self.base_model_files = local_model_fingerprint(config.base_model)

    def _add_base_model_files(self, spec: dict[str, Any]) -> None:
        """Adds the local base model's fingerprint to a spec (nothing for embedded or hub
        models, so their stages keep the hashes they had)."""
        if self.base_model_files is not None:
            spec["base_model_files"] = self.base_model_files

    def _add(self, stage: Stage, study: str) -> Stage:
        existing = self.stages.get(stage.id)
        if existing is None:
            self.stages[stage.id] = existing = stage
        if study not in existing.studies:
            existing.studies.append(study)
        return existing

    def build(self, recipe: Recipe, arm: Arm, seed: int, study: str) -> Stage:
        config = self.config
        data = data_spec(config, recipe, arm.size, seed)
        spec = {
            "kind": "build",
            "format": STAGE_FORMAT,
            "language": config.language,
            "data": data,
            "mode": recipe.mode,
            "retrieval": retrieval_settings(recipe, seed),
            "negatives": recipe.negatives.to_dict(),
            "template": recipe.template,
            "embedder": config.embedder if recipe.mode == "ra-it" else None,
            "seed": seed,
        }
        stage_id = spec_hash(spec)
        size = f"n{arm.size}" if arm.size is not None else "src"
        name = f"{_recipe_slug(recipe)}-{size}-s{seed}"
        return self._add(
            Stage(
                kind="build",
                id=stage_id,
                spec=spec,
                folder=self.work / "datasets" / f"{name}-{stage_id}",
                what=f"{recipe.describe()}, {size.lstrip('n')} conversations, seed {seed}",
                examples_id=spec_hash({"data": data, "language": config.language}),
            ),
            study,
        )

    def train(self, build: Stage, recipe: Recipe, arm: Arm, seed: int, study: str) -> Stage:
        spec = {
            "kind": "train",
            "format": STAGE_FORMAT,
            "dataset": build.id,
            "base_model": self.config.base_model,
            "train": _train_settings(self.config, seed),
            "seed": seed,
        }
        self._add_base_model_files(spec)
        stage_id = spec_hash(spec)
        name = build.folder.name.rsplit("-", 1)[0]
        return self._add(
            Stage(
                kind="train",
                id=stage_id,
                spec=spec,
                folder=self.work / "models" / f"{name}-{stage_id}",
                what=build.what,
                needs=build.id,
            ),
            study,
        )

    def evaluate(
        self,
        study: Study,
        arm: Arm,
        recipe: Recipe,
        model: Stage | None,
        build: Stage | None,
        benchmark: str,
    ) -> Stage:
        config = self.config
        inference = config.inference[arm.inference]
        settings = study.eval
        pool: dict[str, Any] | None = None
        retrieval: dict[str, Any] | None = None
        pool_build = None
        if inference.examples != "none":
            # unset inference settings follow the training recipe (the paper's Fig. 3 set-up);
            # vanilla and mixed models get NN with the paper's k = 2
            trained_with = recipe.mode == "ra-it" and recipe.strategy != "mixed"
            strategy = inference.strategy or (recipe.strategy if trained_with else "nn")
            retrieval = _retrieval(
                strategy=strategy,
                k=inference.k or (recipe.k if recipe.mode == "ra-it" else 2),
                pool_k=inference.pool_k or recipe.pool_k,
                bm25_threshold=inference.bm25_threshold
                if inference.bm25_threshold is not None
                else recipe.bm25_threshold,
                seed=settings.seed,
            )
            if inference.examples == "in_domain":
                pool = {"kind": "in_domain", "split": settings.pool_split}
            elif inference.pool == TRAINING_POOL:
                assert build is not None
                pool = {"kind": "training", "examples": build.examples_id}
                pool_build = build.id
            else:
                pool = {"kind": "sources", "specs": list(inference.pool or ())}
            pool["size"] = inference.pool_size
        model_key = model.id if model is not None else f"base:{config.base_model}"
        name, split = eval_target(benchmark, settings.split)
        spec = {
            "kind": "eval",
            "format": STAGE_FORMAT,
            "model": model_key,
            "language": config.language,
            "benchmark": name,
            "split": split,
            "limit": settings.limit,
            "seed": settings.seed,
            "exclude_types": list(settings.exclude_types),
            "max_new_tokens": settings.max_new_tokens,
            "max_text_tokens": settings.max_text_tokens,
            "constrained": settings.constrained,
            "pool": pool,
            "retrieval": retrieval,
            "embedder": config.embedder
            if retrieval is not None and retrieval["strategy"] != "random"
            else None,
        }
        # decoding settings left to the model are not in the spec, so the identities of
        # evaluations from before these settings existed stay what they were
        if settings.close_lists is not None:
            spec["close_lists"] = settings.close_lists
        if settings.empty_bias is not None:
            spec["empty_bias"] = settings.empty_bias
        if model is None:
            self._add_base_model_files(spec)
        stage_id = spec_hash(spec)
        if model is not None:
            owner = model.folder.name
        else:
            owner = f"base-{spec_hash({'base_model': config.base_model})}"
            if self.base_model_files is not None:
                owner += f"-{self.base_model_files[:6]}"
        if pool is None:
            how = "none"
        else:
            where = {"in_domain": "in", "training": "out", "sources": "out-src"}[pool["kind"]]
            size = "all" if pool["size"] is None else str(pool["size"])
            how = f"{where}{size}-{retrieval['strategy']}-k{retrieval['k']}"
        seed_text = f", seed {model.spec['seed']}" if model is not None else ""
        return self._add(
            Stage(
                kind="eval",
                id=stage_id,
                spec=spec,
                folder=self.work / "evals" / owner / f"{_slug(name)}-{split}-{how}-{stage_id}",
                what=f"{benchmark} ← {recipe.describe()}{seed_text}; {inference.describe()}",
                needs=model.id if model is not None else None,
                model=model_key,
                benchmark=benchmark,
                pool_build=pool_build,
            ),
            study.name,
        )


def make_plan(config: StudyConfig, results_dir: str | Path, only: list[str] | None = None) -> Plan:
    """Every stage the chosen studies need, de-duplicated and in running order."""
    results_dir = Path(results_dir)
    chosen = [config.study(name) for name in only] if only else list(config.studies)
    chosen_names = {s.name for s in chosen}
    studies = [s for s in config.studies if s.name in chosen_names]
    planner = _Planner(config, results_dir)
    runs: list[ArmRun] = []
    seeds: list[int] = []
    for study in studies:
        seeds += [s for s in study.seeds if s not in seeds]
    # model key → [stage ids]: a model's build, training, then its evaluations
    groups: dict[str, list[str]] = {}
    for seed in seeds:
        for study in studies:
            if seed not in study.seeds:
                continue
            for arm in study.arms:
                recipe = config.recipes[arm.recipe]
                build = model = None
                if recipe.trains:
                    build = planner.build(recipe, arm, seed, study.name)
                    model = planner.train(build, recipe, arm, seed, study.name)
                    group = groups.setdefault(model.id, [])
                    for stage_id in (build.id, model.id):
                        if stage_id not in group:
                            group.append(stage_id)
                else:
                    group = groups.setdefault(f"base:{config.base_model}", [])
                evals = {}
                for benchmark in study.eval.benchmarks:
                    stage = planner.evaluate(study, arm, recipe, model, build, benchmark)
                    evals[benchmark] = stage.id
                    if stage.id not in group:
                        group.append(stage.id)
                runs.append(
                    ArmRun(
                        study=study.name,
                        arm=arm.name,
                        seed=seed,
                        train=None if model is None else model.id,
                        build=None if build is None else build.id,
                        evals=evals,
                    )
                )
    ordered: list[Stage] = []
    placed: set[str] = set()
    for group in groups.values():
        for stage_id in group:
            if stage_id not in placed:
                placed.add(stage_id)
                ordered.append(planner.stages[stage_id])
    # Out-domain pools are another model's training examples only through the same build,
    # which is placed before any of its evaluations; a build shared by two models is placed
    # with the first, so every dependency precedes its users.
    return Plan(config, results_dir, ordered, runs, [s.name for s in studies])
