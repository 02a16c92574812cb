"""Running a plan: build → train → eval, each stage once, resumable, then the report.

Every stage writes into its own folder (named by a readable prefix and the hash of its spec,
see :mod:`raitner.reproduce.plan`) and is complete when ``DONE.json`` is there: written
atomically *after* the outputs, it holds the stage's spec, what it produced (counts, scores)
and the wall-clock time it took. On a rerun:

* a stage whose marker holds the same spec is skipped;
* a build without a marker is built again (it is cheap and written atomically);
* a training run without a marker continues from its last checkpoint (``raitner.train``
  resumes on its own when ``output_dir`` holds one; a finished model folder is kept);
* an evaluation without a marker reuses its cached predictions when they were written (they
  carry the settings that made them and are only reused when those match).

Deleting a stage's folder (or only its ``DONE.json``) re-runs that stage alone; stages that
depend on it are not invalidated unless their own spec changes (the hash of a training set
does not depend on where its files live).

Several processes may work on one results folder at once (one per core or per GPU, each with
its own ``--only`` or the same plan): a process claims a stage by creating ``RUNNING.json`` in
its folder (atomically, with its host and pid) and removes it when the stage ends, however it
ends. Another process skips a claimed stage, and the stages that need it, and says so; the last
process to finish writes the complete report. A claim whose process is gone (same host, pid no
longer alive: a killed run) is taken over. A claim from another host is never taken over: delete
its ``RUNNING.json`` by hand once that host's run is known to be dead.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from raitner.atomic import atomic_write
from raitner.errors import RaitnerError
from raitner.evaluate.runner import TEXT_COUNTS_FILE
from raitner.reproduce.plan import Plan, Stage

MARKER = "DONE.json"
CLAIM = "RUNNING.json"
DATASET_FILE = "train.jsonl"
EXAMPLES_FILE = "examples.jsonl"
MODEL_FOLDER = "model"
SCORES_FILE = "scores.json"


class StageError(RaitnerError):
    """A stage could not run (bad data, a marker that does not fit its folder, …)."""


def read_marker(folder: Path) -> dict[str, Any] | None:
    path = folder / MARKER
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None


def is_done(stage: Stage) -> bool:
    marker = read_marker(stage.folder)
    if marker is None:
        return False
    if marker.get("spec") != stage.spec:
        raise StageError(
            f"{stage.folder / MARKER} holds another spec than this stage's (hash collision or "
            "an edited folder); delete the folder to run the stage again"
        )
    return True


def _write_marker(stage: Stage, elapsed: float, outputs: dict[str, Any]) -> None:
    record = {
        "kind": stage.kind,
        "id": stage.id,
        "what": stage.what,
        "spec": stage.spec,
        "elapsed_s": round(elapsed, 2),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "outputs": outputs,
    }
    with atomic_write(stage.folder / MARKER) as handle:
        json.dump(record, handle, ensure_ascii=False, indent=2)
        handle.write("\n")


def _read_claim(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) else None


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def claim_holder(stage: Stage) -> dict[str, Any] | None:
    """The claim record of the live process (other than this one) working on ``stage``, if any.

    A claim that cannot be read, or whose process is gone on this host, counts as no claim."""
    record = _read_claim(stage.folder / CLAIM)
    if record is None:
        return None
    same_host = record.get("host") == socket.gethostname()
    pid = record.get("pid")
    if same_host and isinstance(pid, int) and (pid == os.getpid() or not _process_alive(pid)):
        return None
    return record


def try_claim(stage: Stage) -> dict[str, Any] | None:
    """Claim ``stage`` for this process. Returns None when the claim is this process's, else
    the record of the live process that holds it.

    The record is written to a private file first and hard-linked to ``RUNNING.json``, so the
    claim appears complete or not at all and two processes cannot both create it. A stale claim
    (see :func:`claim_holder`) is removed and claimed afresh."""
    stage.folder.mkdir(parents=True, exist_ok=True)
    path = stage.folder / CLAIM
    private = stage.folder / f".{CLAIM}.{uuid.uuid4().hex}"
    record = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    private.write_text(json.dumps(record) + "\n", encoding="utf-8")
    try:
        for _attempt in range(3):
            try:
                os.link(private, path)
                return None
            except FileExistsError:
                holder = claim_holder(stage)
                if holder is not None:
                    return holder
                path.unlink(missing_ok=True)  # stale: its process is gone
        holder = _read_claim(path)
        return holder or {"host": "?", "pid": "?", "started_at": "?"}
    finally:
        private.unlink(missing_ok=True)


def release_claim(stage: Stage) -> None:
    """Remove this process's claim on ``stage`` (a claim of another process is left alone)."""
    path = stage.folder / CLAIM
    record = _read_claim(path)
    if record and record.get("pid") == os.getpid() and record.get("host") == socket.gethostname():
        path.unlink(missing_ok=True)


def _describe_holder(holder: dict[str, Any]) -> str:
    return (
        f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, "
        f"since {holder.get('started_at', '?')}"
    )


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def partial_state(stage: Stage) -> str:
    """What an unfinished stage has on disk already (for the plan and progress lines)."""
    if stage.kind == "train":
        model = stage.folder / MODEL_FOLDER
        if (model / "raitner.json").is_file():
            return "model written, marker missing"
        checkpoints = sorted(
            (p for p in model.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()),
            key=lambda p: int(p.name.split("-")[-1]),
        )
        if checkpoints:
            return f"resumes from {checkpoints[-1].name}"
    if stage.kind == "eval" and any((stage.folder / "predictions").glob("*.jsonl")):
        return "cached predictions"
    return ""


# ----------------------------------------------------------------------------- examples


def load_training_examples(data: dict[str, Any], data_root: str | Path | None) -> list[Any]:
    """The examples a build stage's ``data`` spec names (see :func:`plan.data_spec`)."""
    import numpy as np

    from raitner.sources import load_source, load_sources

    only = data["only_with_entities"]
    if "sources" in data:
        examples = load_sources(data["sources"], data_root, seed=data["seed"])
        return [ex for ex in examples if ex.entities] if only else examples
    examples = []
    seen: set[str] = set()
    for spec, count in data["mix"].items():
        if count == 0:
            continue
        candidates = load_source(spec, data_root)
        if only:
            candidates = [ex for ex in candidates if ex.entities]
        if count > len(candidates):
            having = " with entities" if only else ""
            raise StageError(
                f"training mix: {spec} has {len(candidates)} texts{having}, the size asks for "
                f"{count} of them; lower the size or the weight of {spec}"
            )
        # The first ``count`` of one seeded permutation: a smaller size is a subset of a larger.
        order = np.random.default_rng(data["seed"]).permutation(len(candidates))
        for index in sorted(order[:count].tolist()):
            example = candidates[index]
            if example.id in seen:
                raise StageError(f"example id {example.id!r} appears twice in the training mix")
            seen.add(example.id)
            examples.append(example)
    return examples


def make_embedder(name: str) -> Any:
    from raitner.retrieval.embedders import HashingEmbedder, SentenceTransformerEmbedder

    if name == "hashing":
        return HashingEmbedder()
    return SentenceTransformerEmbedder(None if name == "default" else name)


# ------------------------------------------------------------------------------- runner


class Runner:
    def __init__(
        self,
        plan: Plan,
        data_root: str | Path | None = None,
        *,
        out: Callable[[str], None] = print,
        show_progress: bool = True,
    ) -> None:
        self.plan = plan
        self.config = plan.config
        self.data_root = data_root
        self.out = out
        self.show_progress = show_progress
        self._embedder: Any = None
        self._loaded: tuple[tuple[Any, ...], Any] | None = None
        #: stage id → "ran" | "skipped" (done already) | "elsewhere" (claimed by another
        #: process, or needing a stage that is), for this invocation
        self.outcome: dict[str, str] = {}

    # -------------------------------------------------------------------- plan display

    def describe(self) -> list[str]:
        """One line per stage: number, kind, status, folder, what."""
        lines = []
        total = len(self.plan.stages)
        for index, stage in enumerate(self.plan.stages, 1):
            if is_done(stage):
                marker = read_marker(stage.folder) or {}
                status = f"done ({format_seconds(marker.get('elapsed_s', 0))})"
            elif (holder := claim_holder(stage)) is not None:
                status = f"running (pid {holder.get('pid', '?')})"
            else:
                partial = partial_state(stage)
                status = f"to do ({partial})" if partial else "to do"
            relative = stage.folder.relative_to(self.plan.results_dir)
            lines.append(
                f"[{index}/{total}] {stage.kind:<5} {status:<28} {relative}\n        {stage.what}"
            )
        return lines

    def summary(self) -> str:
        done = {"build": 0, "train": 0, "eval": 0}
        for stage in self.plan.stages:
            if is_done(stage):
                done[stage.kind] += 1
        counts = self.plan.counts()
        parts = [f"{kind} {done[kind]}/{counts[kind]} done" for kind in ("build", "train", "eval")]
        remaining = sum(counts.values()) - sum(done.values())
        return f"{'; '.join(parts)}; {remaining} stage(s) to run"

    # ---------------------------------------------------------------------------- run

    def run(self) -> None:
        started = time.perf_counter()
        total = len(self.plan.stages)
        for index, stage in enumerate(self.plan.stages, 1):
            prefix = f"[{index}/{total}] {stage.kind}"
            if is_done(stage):
                self.outcome[stage.id] = "skipped"
                self.out(f"{prefix} done already: {stage.what}")
                continue
            waiting = [
                needed
                for needed in (stage.needs, stage.pool_build)
                if needed is not None and not is_done(self.plan.stage(needed))
            ]
            if waiting:
                # only possible when another process holds what it needs (a failure here
                # would have stopped this run)
                self.outcome[stage.id] = "elsewhere"
                self.out(f"{prefix} waits for a stage another process is running: {stage.what}")
                continue
            holder = try_claim(stage)
            if holder is not None:
                self.outcome[stage.id] = "elsewhere"
                self.out(
                    f"{prefix} running in another process ({_describe_holder(holder)}): "
                    f"{stage.what}"
                )
                continue
            try:
                if is_done(stage):  # finished by another process since the check above
                    self.outcome[stage.id] = "skipped"
                    self.out(f"{prefix} done already: {stage.what}")
                    continue
                partial = partial_state(stage)
                note = f" ({partial})" if partial else ""
                relative = stage.folder.relative_to(self.plan.results_dir)
                self.out(f"{prefix} {stage.what}{note} → {relative}")
                stage_started = time.perf_counter()
                runner = {"build": self._build, "train": self._train, "eval": self._eval}
                outputs = runner[stage.kind](stage)
                elapsed = time.perf_counter() - stage_started
                _write_marker(stage, elapsed, outputs)
            finally:
                release_claim(stage)
            self.outcome[stage.id] = "ran"
            self.out(
                f"{prefix} finished in {format_seconds(elapsed)} "
                f"(elapsed {format_seconds(time.perf_counter() - started)})"
                + _brief(stage, outputs)
            )

    # ------------------------------------------------------------------------- stages

    def embedder(self) -> Any:
        if self._embedder is None:
            self._embedder = make_embedder(self.config.embedder)
        return self._embedder

    def embedding_cache(self) -> Any:
        """The results folder's embedding cache, shared by builds and evaluations."""
        from raitner.retrieval.cache import EmbeddingCache

        return EmbeddingCache(self.plan.results_dir / "cache" / "embeddings")

    def _build(self, stage: Stage) -> dict[str, Any]:
        from raitner.data.builder import BuildConfig, build_dataset
        from raitner.data.negatives import NegativeSampling
        from raitner.io.jsonl import iter_jsonl, write_examples
        from raitner.retrieval.strategies import RetrievalConfig

        spec = stage.spec
        examples = load_training_examples(spec["data"], self.data_root)
        if not examples:
            raise StageError(f"build {stage.folder.name}: the training mix has no examples")
        retrieval = RetrievalConfig(**spec["retrieval"]) if spec["retrieval"] else None
        config = BuildConfig(
            template=spec["template"],
            retrieval=retrieval,
            negatives=NegativeSampling(**spec["negatives"]),
            seed=spec["seed"],
        )
        dataset = stage.folder / DATASET_FILE
        data = spec["data"]
        sources = data.get("sources") or [f"{s}@{n}" for s, n in data["mix"].items() if n]

        def progress(records: Iterator) -> Iterator:
            from tqdm.auto import tqdm

            return tqdm(records, total=len(examples), desc="build", unit="sample")

        stats = build_dataset(
            examples,
            dataset,
            config,
            embedder=self.embedder() if retrieval is not None else None,
            cache=self.embedding_cache(),
            sources=sources,
            progress=progress if self.show_progress else None,
        )
        kept = {record["id"] for _number, record in iter_jsonl(dataset)}
        write_examples(stage.folder / EXAMPLES_FILE, [ex for ex in examples if ex.id in kept])
        summary = stats.to_dict()
        return {
            "dataset": DATASET_FILE,
            "examples": EXAMPLES_FILE,
            "conversations": summary["samples"],
            "questions": summary["questions"],
            "examples_used": summary["examples_used"],
            "skipped_no_questions": summary["skipped_no_questions"],
        }

    def _train(self, stage: Stage) -> dict[str, Any]:
        from raitner.train import TrainConfig, train

        self._loaded = None  # free the last evaluated model's memory for training
        build = self.plan.stage(stage.needs)
        output = stage.folder / MODEL_FOLDER
        config = TrainConfig(
            **self.config.train,
            datasets=[str(build.folder / DATASET_FILE)],
            output_dir=str(output),
            base_model=self.config.base_model,
            seed=stage.spec["seed"],
        )
        if not (output / "raitner.json").is_file():
            train(config)
        info = json.loads((output / "raitner.json").read_text(encoding="utf-8"))
        result = info.get("result", {})
        dataset = info.get("dataset", {})
        return {
            "model": MODEL_FOLDER,
            "conversations": dataset.get("samples"),
            "trained_samples": dataset.get("trained_samples"),
            "steps": result.get("global_step"),
            "train_loss": result.get("train_loss"),
            "resumed_from": result.get("resumed_from"),
        }

    def _model(self, stage: Stage) -> Any:
        from raitner.api import OpenNER
        from raitner.models import EMBEDDED_LLM, is_default_model

        settings = self.config.eval
        if stage.needs is not None:
            path = str(self.plan.stage(stage.needs).folder / MODEL_FOLDER)
        elif is_default_model(self.config.base_model):
            path = EMBEDDED_LLM  # the untuned base, never a packaged fine-tuned default
        else:
            path = self.config.base_model
        spec = stage.spec
        key = (
            path,
            spec["max_new_tokens"],
            spec["max_text_tokens"],
            spec["constrained"],
            spec.get("close_lists"),
            spec.get("empty_bias"),
        )
        if self._loaded is not None and self._loaded[0] == key:
            return self._loaded[1]
        self._loaded = None  # let the previous model go before loading the next
        options: dict[str, Any] = {}
        if settings.backend is not None:
            options["backend"] = settings.backend
        if spec["constrained"]:
            options["constrained"] = True
        for name in ("close_lists", "empty_bias"):
            if spec.get(name) is not None:
                options[name] = spec[name]
        ner = OpenNER.from_pretrained(
            path,
            lang=self.config.language,
            device=settings.device,
            batch_size=settings.batch_size,
            max_new_tokens=spec["max_new_tokens"],
            max_text_tokens=spec["max_text_tokens"],
            **options,
        )
        self._loaded = (key, ner)
        return ner

    def _eval_settings(self, stage: Stage) -> Any:
        from raitner.evaluate.runner import EvalSettings

        spec = stage.spec
        pool = spec["pool"]
        pool_sources = None
        if pool is not None and pool["kind"] == "training":
            pool_sources = [str(self.plan.stage(stage.pool_build).folder / EXAMPLES_FILE)]
        elif pool is not None and pool["kind"] == "sources":
            pool_sources = list(pool["specs"])
        return EvalSettings(
            benchmarks=[spec["benchmark"]],
            split=spec["split"],
            limit=spec["limit"],
            seed=spec["seed"],
            exclude_types=tuple(spec["exclude_types"]),
            examples="none" if pool is None else "pool",
            pool_split=pool["split"] if pool is not None and "split" in pool else "train",
            pool_size=None if pool is None else pool["size"],
            pool_sources=pool_sources,
            retrieval=spec["retrieval"],
            batch_size=self.config.eval.batch_size,
            model=stage.model or "",
            **({"constrained": True} if spec["constrained"] else {}),
            **{
                name: spec[name]
                for name in ("close_lists", "empty_bias")
                if spec.get(name) is not None
            },
        )

    def _eval(self, stage: Stage) -> dict[str, Any]:
        from raitner.evaluate.runner import predict_benchmark, score_benchmark

        spec = stage.spec
        settings = self._eval_settings(stage)
        ner = _Lazy(lambda: self._model(stage))  # not loaded when the predictions are cached
        embedder = None
        if spec["retrieval"] is not None and spec["retrieval"]["strategy"] != "random":
            embedder = self.embedder()
        golds, types, records = predict_benchmark(
            ner,
            spec["benchmark"],
            settings,
            self.data_root,
            stage.folder,
            embedder=embedder,
            embedding_cache=self.embedding_cache() if embedder is not None else None,
            show_progress=self.show_progress,
            check_limits=False,  # they are part of the stage's identity, hence of its folder
        )
        scores = score_benchmark(golds, types, records)
        with atomic_write(stage.folder / SCORES_FILE) as handle:
            json.dump(
                {metric: result.to_dict() for metric, result in scores.items()},
                handle,
                ensure_ascii=False,
                indent=2,
            )
            handle.write("\n")
        _write_text_counts(stage, golds, types, scores)
        loaded = ner._target  # None when every prediction came from the cache
        return {
            "backend": getattr(loaded, "backend_name", None) if loaded is not None else "cached",
            "texts": len(golds),
            "types": len(types),
            "f1": {metric: result.f1 for metric, result in scores.items()},
            "unparseable": {metric: result.n_unparseable for metric, result in scores.items()},
        }

    def backfill_text_counts(self) -> int:
        """Write the per-text counts of finished evaluations that predate them, from their
        saved predictions (no model is loaded); return how many were written. An evaluation
        whose predictions are gone is left as it is (its comparisons get no bootstrap)."""
        from raitner.evaluate.runner import saved_predictions, score_benchmark

        written = 0
        for stage in self.plan.stages:
            if stage.kind != "eval" or not is_done(stage):
                continue
            if (stage.folder / TEXT_COUNTS_FILE).exists():
                continue
            try:
                saved = saved_predictions(
                    stage.spec["benchmark"],
                    self._eval_settings(stage),
                    self.data_root,
                    stage.folder,
                )
            except (OSError, RaitnerError):  # the benchmark cannot be read here
                continue
            if saved is None:
                continue
            golds, types, records = saved
            _write_text_counts(stage, golds, types, score_benchmark(golds, types, records))
            written += 1
        return written


def _write_text_counts(stage: Stage, golds: Any, types: Any, scores: Any) -> None:
    from raitner.evaluate.runner import text_counts_entry

    with atomic_write(stage.folder / TEXT_COUNTS_FILE) as handle:
        json.dump(text_counts_entry(golds, types, scores), handle, ensure_ascii=False)
        handle.write("\n")


def read_text_counts(folder: Path) -> dict[str, Any] | None:
    """An evaluation's per-text counts (``texts``: ids; per metric one ``[tp, n_pred,
    n_gold]`` row per text), or None when it has none."""
    path = folder / TEXT_COUNTS_FILE
    if not path.exists():
        return None
    try:
        with path.open(encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, json.JSONDecodeError):
        return None


class _Lazy:
    """Loads the model on first use: a resumed evaluation with cached predictions needs none."""

    def __init__(self, load: Callable[[], Any]) -> None:
        self._load = load
        self._target: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._target is None:
            self._target = self._load()
        return getattr(self._target, name)


def _brief(stage: Stage, outputs: dict[str, Any]) -> str:
    if stage.kind == "build":
        return f": {outputs['conversations']} conversations"
    if stage.kind == "train":
        loss = outputs.get("train_loss")
        return f": {outputs['steps']} steps" + ("" if loss is None else f", loss {loss:.4f}")
    f1 = outputs["f1"]
    return ": F1 " + ", ".join(f"{metric} {100 * value:.2f}" for metric, value in f1.items())


# ------------------------------------------------------------------------------ driver


def reproduce(
    config: Any,
    results_dir: str | Path,
    *,
    only: list[str] | None = None,
    dry_run: bool = False,
    report_only: bool = False,
    data_root: str | Path | None = None,
    out: Callable[[str], None] = print,
    show_progress: bool = True,
    plots: bool = True,
) -> dict[str, Any] | None:
    """Plan, print the plan, run what is not done, write the report; return the results
    mapping (None for a dry run, which runs and writes nothing). ``report_only`` runs no
    stage and writes the report from the stages finished so far (for a look at a run that
    another process, or a later session, is still working on)."""
    from raitner.reproduce.plan import make_plan
    from raitner.reproduce.tables import write_results

    results_dir = Path(results_dir)
    data_root = data_root if data_root is not None else config.data_root
    plan = make_plan(config, results_dir, only)
    runner = Runner(plan, data_root, out=out, show_progress=show_progress)
    out(f"reproduce {config.name}: studies {', '.join(plan.studies)}; results in {results_dir}")
    out(f"plan: {runner.summary()}")
    if dry_run:
        for line in runner.describe():
            out(line)
        out("dry run: nothing was run or written")
        return None
    from raitner.io.registry import resolve_data_root

    resolve_data_root(data_root)  # a missing data root fails before any training
    if report_only:
        results = _report(config, results_dir, plan, only, plots, write_results, data_root)
        out(f"report of the finished stages written: {results_dir / 'README.md'} (nothing run)")
        return results
    started = time.perf_counter()
    try:
        runner.run()
    except BaseException:
        try:
            _report(config, results_dir, plan, only, plots, write_results, data_root)
            out(f"partial report written to {results_dir}")
        except Exception as error:  # the original error matters more
            out(f"(could not write the partial report: {error})")
        raise
    results = _report(config, results_dir, plan, only, plots, write_results, data_root)
    outcomes = list(runner.outcome.values())
    ran, elsewhere = outcomes.count("ran"), outcomes.count("elsewhere")
    out(
        f"{ran} stage(s) run, {outcomes.count('skipped')} already done, in "
        f"{format_seconds(time.perf_counter() - started)}; report: {results_dir / 'README.md'}"
    )
    if elsewhere:
        out(
            f"{elsewhere} stage(s) left to another process working on {results_dir} (or waiting "
            "for one): the report shows them once that process finishes; rerun to check"
        )
    for study in results["studies"]:
        counts = ", ".join(f"{n} {v}" for v, n in study["verdicts"].items() if n)
        out(f"  {study['name']}: {counts or 'no comparisons'}")
    return results


def _report(config, results_dir, plan, only, plots, write_results, data_root):
    from raitner.reproduce.plan import make_plan

    full = make_plan(config, results_dir) if only else plan
    Runner(full, data_root, show_progress=False).backfill_text_counts()
    return write_results(full, plots=plots)
