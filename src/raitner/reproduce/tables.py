"""The results folder: ``results.json``, one markdown table per study, an index ``README.md``.

Everything is read back from the stages' ``DONE.json`` markers, so a report can be written at
any time (a partial run reports what is finished; the rest reads "not run") and always agrees
with what is on disk.
"""

from __future__ import annotations

import json
import shlex
import time
from typing import Any

from raitner.atomic import atomic_write
from raitner.evaluate.significance import Interval, paired_bootstrap
from raitner.reproduce.config import Study
from raitner.reproduce.plan import Plan
from raitner.reproduce.runner import format_seconds, read_marker, read_text_counts
from raitner.reproduce.verdicts import VERDICTS, judge, rule_text

METRIC_LABELS = {"ra_it": "RA-IT F1", "uniner": "UniNER F1", "span": "span F1"}
PAPER_NOTE = (
    "The paper's numbers are average F1 of LLaMA-3-8B (English) / Qwen1.5-7B (Chinese) trained "
    "on 5K-50K ChatGPT-annotated conversations; a small model on a few hundred mixed "
    "conversations scores far lower, so they are there for the direction of each comparison, "
    "not its level."
)


def _points(value: float) -> float:
    return round(100 * value, 2)


def _arm_result(plan: Plan, study: Study, arm_name: str) -> dict[str, Any]:
    config = plan.config
    arm = study.arm(arm_name)
    recipe = config.recipes[arm.recipe]
    inference = config.inference[arm.inference]
    seeds: dict[str, Any] = {}
    for seed in study.seeds:
        run = plan.run_of(study.name, arm.name, seed)
        if run is None:
            continue
        benchmarks: dict[str, float] = {}
        elapsed = 0.0
        for benchmark, stage_id in run.evals.items():
            marker = read_marker(plan.stage(stage_id).folder)
            if marker is None:
                continue
            benchmarks[benchmark] = _points(marker["outputs"]["f1"][study.metric])
            elapsed += marker.get("elapsed_s", 0.0)
        entry: dict[str, Any] = {
            "benchmarks": benchmarks,
            "complete": len(benchmarks) == len(run.evals),
            "avg": None,
            "model": run.train,
            "eval_seconds": round(elapsed, 1),
        }
        if entry["complete"]:
            # macro average of the unrounded per-benchmark scores, like the eval reports
            raw = [
                read_marker(plan.stage(i).folder)["outputs"]["f1"][study.metric]
                for i in run.evals.values()
            ]
            entry["avg"] = _points(sum(raw) / len(raw))
        if run.build is not None:
            build = read_marker(plan.stage(run.build).folder)
            entry["conversations"] = None if build is None else build["outputs"]["conversations"]
        if run.train is not None:
            trained = read_marker(plan.stage(run.train).folder)
            entry["steps"] = None if trained is None else trained["outputs"]["steps"]
            entry["train_seconds"] = None if trained is None else trained["elapsed_s"]
        seeds[str(seed)] = entry
    averages = [entry["avg"] for entry in seeds.values() if entry["avg"] is not None]
    per_benchmark: dict[str, float] = {}
    for benchmark in study.eval.benchmarks:
        values = [
            entry["benchmarks"][benchmark]
            for entry in seeds.values()
            if entry["complete"] and benchmark in entry["benchmarks"]
        ]
        if values:
            per_benchmark[benchmark] = round(sum(values) / len(values), 2)
    return {
        "name": arm.name,
        "label": arm.label or f"{recipe.describe()}; {inference.describe()}",
        "recipe": arm.recipe,
        "training": recipe.describe(),
        "size": arm.size,
        "inference": arm.inference,
        "inference_label": inference.describe(),
        "paper": arm.paper,
        "paper_note": arm.paper_note,
        "seeds": seeds,
        "benchmarks_mean": per_benchmark,
        "mean": round(sum(averages) / len(averages), 2) if averages else None,
        "min": min(averages) if averages else None,
        "max": max(averages) if averages else None,
        "n_seeds": len(averages),
    }


def _text_counts(plan: Plan, study: Study, arm_name: str) -> dict[int, dict[str, Any]]:
    """``{seed: {benchmark: {"texts": ids, "rows": [[tp, n_pred, n_gold], ...]}}}`` for the
    seeds whose every evaluation has per-text counts of the study's metric."""
    found: dict[int, dict[str, Any]] = {}
    for seed in study.seeds:
        run = plan.run_of(study.name, arm_name, seed)
        if run is None:
            continue
        per_benchmark = {}
        for benchmark, stage_id in run.evals.items():
            data = read_text_counts(plan.stage(stage_id).folder)
            if data is None or study.metric not in data:
                break
            per_benchmark[benchmark] = {"texts": data["texts"], "rows": data[study.metric]}
        else:
            found[seed] = per_benchmark
    return found


def _interval(
    plan: Plan, base: dict[int, dict[str, Any]], treat: dict[int, dict[str, Any]], seeds: list[int]
) -> Interval | None:
    """The paired bootstrap interval of treatment − baseline over the test texts (from the
    arms' :func:`_text_counts`), or None when a seed lacks per-text counts or the two arms
    were not asked the same texts."""
    settings = plan.config.verdict
    if not settings.resamples or not seeds:
        return None
    if any(seed not in base or seed not in treat for seed in seeds):
        return None
    for seed in seeds:
        if base[seed].keys() != treat[seed].keys():
            return None
        for benchmark, counts in base[seed].items():
            if counts["texts"] != treat[seed][benchmark]["texts"]:
                return None
    return paired_bootstrap(
        {seed: {b: c["rows"] for b, c in base[seed].items()} for seed in seeds},
        {seed: {b: c["rows"] for b, c in treat[seed].items()} for seed in seeds},
        resamples=settings.resamples,
        level=settings.confidence,
    )


def _budget(arms: dict[str, Any], baseline: str, treatment: str) -> dict[str, Any]:
    def values(name: str, key: str) -> list[Any]:
        return sorted(
            {entry.get(key) for entry in arms[name]["seeds"].values() if entry.get(key) is not None}
        )

    budget = {
        key: {"baseline": values(baseline, key), "treatment": values(treatment, key)}
        for key in ("conversations", "steps")
    }
    budget["equal"] = all(
        not (item["baseline"] and item["treatment"]) or item["baseline"] == item["treatment"]
        for item in budget.values()
    )
    return budget


def study_results(plan: Plan, study: Study) -> dict[str, Any]:
    config = plan.config
    arms = {arm.name: _arm_result(plan, study, arm.name) for arm in study.arms}
    text_counts: dict[str, dict[int, dict[str, Any]]] = {}  # read once per arm

    def counts_of(name: str) -> dict[int, dict[str, Any]]:
        if name not in text_counts:
            text_counts[name] = _text_counts(plan, study, name)
        return text_counts[name]

    comparisons = []
    for comparison in study.comparisons:
        base = arms[comparison.baseline]
        treat = arms[comparison.treatment]

        base_scores, treat_scores = seed_averages(base), seed_averages(treat)
        seeds = sorted(set(base_scores) & set(treat_scores))
        interval = _interval(
            plan, counts_of(comparison.baseline), counts_of(comparison.treatment), seeds
        )
        verdict = judge(comparison.expect, base_scores, treat_scores, config.verdict, interval)
        paper = comparison.paper
        if paper is None and base["paper"] is not None and treat["paper"] is not None:
            paper = (base["paper"], treat["paper"])
        comparisons.append(
            {
                "baseline": comparison.baseline,
                "treatment": comparison.treatment,
                "expect": comparison.expect,
                "note": comparison.note,
                "paper_baseline": None if paper is None else paper[0],
                "paper_treatment": None if paper is None else paper[1],
                "paper_delta": None if paper is None else round(paper[1] - paper[0], 2),
                "budget": _budget(arms, comparison.baseline, comparison.treatment),
                **verdict.to_dict(),
            }
        )
    counts = {name: 0 for name in VERDICTS}
    for comparison in comparisons:
        counts[comparison["verdict"]] += 1
    return {
        "name": study.name,
        "title": study.title,
        "finding": study.finding,
        "source": study.source,
        "metric": study.metric,
        "seeds": list(study.seeds),
        "eval": {
            "benchmarks": list(study.eval.benchmarks),
            "split": study.eval.split,
            "limit": study.eval.limit,
            "seed": study.eval.seed,
            "max_new_tokens": study.eval.max_new_tokens,
            "constrained": study.eval.constrained,
            "close_lists": study.eval.close_lists,
            "empty_bias": study.eval.empty_bias,
        },
        "plot": study.plot,
        "arms": list(arms.values()),
        "comparisons": comparisons,
        "verdicts": counts,
    }


def stage_records(plan: Plan) -> list[dict[str, Any]]:
    records = []
    for stage in plan.stages:
        marker = read_marker(stage.folder)
        records.append(
            {
                "kind": stage.kind,
                "id": stage.id,
                "folder": str(stage.folder.relative_to(plan.results_dir)),
                "what": stage.what,
                "studies": stage.studies,
                "status": "done" if marker is not None else "not run",
                "elapsed_s": None if marker is None else marker.get("elapsed_s"),
                "outputs": None if marker is None else marker.get("outputs"),
            }
        )
    return records


def collect(plan: Plan) -> dict[str, Any]:
    """Everything the report says, as one JSON-ready mapping."""
    config = plan.config
    stages = stage_records(plan)
    wall: dict[str, float] = {"build": 0.0, "train": 0.0, "eval": 0.0}
    for record in stages:
        if record["elapsed_s"] is not None:
            wall[record["kind"]] += record["elapsed_s"]
    wall["total"] = sum(wall.values())
    return {
        "config": config.name,
        "description": config.description,
        "config_file": None if config.path is None else str(config.path),
        "overrides": list(config.overrides),
        "language": config.language,
        "base_model": config.base_model,
        "embedder": config.embedder,
        "seeds": list(config.seeds),
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "verdict_rule": rule_text(config.verdict),
        "paper_note": PAPER_NOTE,
        "studies": [study_results(plan, study) for study in config.studies],
        "stages": stages,
        "wall_clock_s": {k: round(v, 1) for k, v in wall.items()},
    }


# ------------------------------------------------------------------------------- markdown


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def seeds_cell(arm: dict[str, Any], study_seeds: list[int]) -> str:
    """The arm's average for each of the study's seeds in order, "-" for one not finished
    (so one finished seed of two reads "10.68 / -", not as if it were the only seed), or
    "not run" when none has finished."""
    averages = seed_averages(arm)
    if not averages:
        return "not run"
    return " / ".join(_cell(averages.get(seed)) for seed in study_seeds)


def seed_averages(arm: dict[str, Any]) -> dict[int, float]:
    """An arm's average per seed, for the seeds whose results are complete."""
    return {int(s): e["avg"] for s, e in arm["seeds"].items() if e["avg"] is not None}


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}"


def _escape(text: str) -> str:
    return str(text).replace("|", "\\|")


def _interval_cell(interval: list[float] | None) -> str:
    return "-" if interval is None else f"[{interval[0]:+.2f}, {interval[1]:+.2f}]"


def _decoding_lines(evaluation: dict[str, Any]) -> list[str]:
    """A line naming the decoding settings the config sets (none: the models decode as their
    own ``raitner.json`` says, free decoding for a model trained here)."""
    parts = []
    if evaluation.get("constrained"):
        parts.append("answers constrained to JSON lists")
    if evaluation.get("close_lists") is not None:
        parts.append("list answers closed" if evaluation["close_lists"] else "lists not closed")
    if evaluation.get("empty_bias") is not None:
        parts.append(f"empty-answer bias {evaluation['empty_bias']:+g}")
    return [f"Decoding: {'; '.join(parts)}.", ""] if parts else []


def study_markdown(result: dict[str, Any], rule: str, plot: str | None) -> str:
    evaluation = result["eval"]
    limit = "all" if evaluation["limit"] is None else evaluation["limit"]
    benchmarks = evaluation["benchmarks"]
    lines = [f"# {result['title']}", ""]
    if result["finding"]:
        source = f" ({result['source']})" if result["source"] else ""
        lines += [f"**Paper's finding**{source}: {result['finding']}", ""]
    lines += [
        f"Metric: {METRIC_LABELS[result['metric']]} (%), macro average over "
        f"{len(benchmarks)} benchmarks ({evaluation['split']} split, {limit} texts each, "
        f"drawn with seed {evaluation['seed']}); training seeds "
        f"{', '.join(map(str, result['seeds']))}. Cells are means over the seeds with complete "
        "results; *Seeds* lists each training seed's average in that order (- where a seed has "
        "not finished).",
        "",
        *_decoding_lines(evaluation),
        PAPER_NOTE,
        "",
        "## Arms",
        "",
    ]
    header = ["Arm", "Training", "Inference", "Conv.", "Steps", *benchmarks, "Avg.", "Seeds"]
    header.append("Paper")
    lines.append("| " + " | ".join(_escape(h) for h in header) + " |")
    lines.append("|---|---|---|" + "---:|" * (len(header) - 3))
    for arm in result["arms"]:
        entries = list(arm["seeds"].values())
        conversations = sorted({e.get("conversations") for e in entries} - {None})
        steps = sorted({e.get("steps") for e in entries} - {None})
        per_seed = seeds_cell(arm, result["seeds"])
        paper = _cell(arm["paper"])
        if arm["paper"] is not None and arm["paper_note"]:
            paper += f" ({arm['paper_note']})"
        row = [
            arm["name"],
            arm["training"],
            arm["inference_label"],
            "/".join(map(str, conversations)) or "-",
            "/".join(map(str, steps)) or "-",
            *[_cell(arm["benchmarks_mean"].get(b)) for b in benchmarks],
            _cell(arm["mean"]),
            per_seed,
            paper,
        ]
        lines.append("| " + " | ".join(_escape(c) for c in row) + " |")
    if result["comparisons"]:
        lines += [
            "",
            "## Comparisons",
            "",
            "| Baseline → treatment | Paper expects | Δ ours | Noise | Interval (texts) | Δ paper "
            "| Verdict |",
            "|---|---|---:|---:|---:|---:|---|",
        ]
        for comparison in result["comparisons"]:
            expect = "treatment higher" if comparison["expect"] == "higher" else "treatment lower"
            paper = _signed(comparison["paper_delta"])
            if comparison["paper_delta"] is not None:
                paper += (
                    f" ({_cell(comparison['paper_baseline'])} → "
                    f"{_cell(comparison['paper_treatment'])})"
                )
            verdict = f"**{comparison['verdict']}**"
            if comparison["noise_basis"]:
                verdict += f" ({comparison['noise_basis']})"
            if not comparison["budget"]["equal"]:
                verdict += "; unequal training budget"
            name = f"{comparison['baseline']} → {comparison['treatment']}"
            if comparison["note"]:
                name += f" ({comparison['note']})"
            row = [
                name,
                expect,
                _signed(comparison["delta"]),
                _cell(comparison["noise"]),
                _interval_cell(comparison["interval"]),
                paper,
                verdict,
            ]
            lines.append("| " + " | ".join(_escape(c) for c in row) + " |")
        lines += ["", f"Verdict rule: {rule}"]
    if plot:
        lines += ["", f"![{result['name']}]({plot})"]
    return "\n".join(lines) + "\n"


def index_markdown(results: dict[str, Any], plots: dict[str, str | None]) -> str:
    lines = [f"# Reproduction: {results['config']}", ""]
    if results["description"]:
        lines += [results["description"].strip(), ""]
    overrides = results.get("overrides") or []
    changed = " ".join(f"--set {shlex.quote(item)}" for item in overrides)
    lines += [
        f"Config: `{results['config_file']}`"
        + (f" with `{changed}`" if changed else "")
        + f"; base model `{results['base_model']}`; "
        f"embedder `{results['embedder']}`; generated {results['generated_at']}.",
        "",
        f"Verdict rule: {results['verdict_rule']}",
        "",
        "| Study | Paper's finding | Source | Reproduced | Not reproduced | Inconclusive "
        "| Not run |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for study in results["studies"]:
        counts = study["verdicts"]
        link = f"[{study['title']}]({study['name']}.md)"
        lines.append(
            f"| {_escape(link)} | {_escape(study['finding'])} | {_escape(study['source'])} | "
            f"{counts['reproduced']} | {counts['not reproduced']} | {counts['inconclusive']} | "
            f"{counts['not run']} |"
        )
    wall = results["wall_clock_s"]
    done = [s for s in results["stages"] if s["status"] == "done"]
    lines += [
        "",
        "## Wall-clock time",
        "",
        f"{len(done)} of {len(results['stages'])} stages done; build "
        f"{format_seconds(wall['build'])}, training {format_seconds(wall['train'])}, "
        f"evaluation {format_seconds(wall['eval'])}, total {format_seconds(wall['total'])} "
        "(every stage's time is in results.json under `stages`).",
        "",
        "| Stage | What | Time | Output |",
        "|---|---|---:|---|",
    ]
    eval_time: dict[str, tuple[int, float]] = {}
    for stage in results["stages"]:
        if stage["kind"] == "eval":
            owner = stage["folder"].split("/")[2]
            count, total = eval_time.get(owner, (0, 0.0))
            eval_time[owner] = (count + 1, total + (stage["elapsed_s"] or 0.0))
            continue
        time_text = "not run" if stage["elapsed_s"] is None else format_seconds(stage["elapsed_s"])
        outputs = stage["outputs"] or {}
        if stage["kind"] == "build":
            output = f"{outputs.get('conversations', '-')} conversations"
        else:
            output = f"{outputs.get('steps', '-')} steps"
        lines.append(
            f"| {stage['kind']} `{stage['folder']}` | {_escape(stage['what'])} | {time_text} | "
            f"{output} |"
        )
    for owner, (count, total) in eval_time.items():
        lines.append(
            f"| eval `work/evals/{owner}/*` | {count} benchmark runs | {format_seconds(total)} | |"
        )
    if any(plots.values()):
        lines += ["", "## Plots", ""]
        for name, path in plots.items():
            if path:
                lines.append(f"![{name}]({path})")
    return "\n".join(lines) + "\n"


def write_results(plan: Plan, *, plots: bool = True) -> dict[str, Any]:
    """Write ``results.json``, ``<study>.md`` per study, ``README.md`` (and PNG plots when
    matplotlib is installed and ``plots``); return the results mapping."""
    results = collect(plan)
    folder = plan.results_dir
    plot_paths: dict[str, str | None] = {}
    for study in results["studies"]:
        path = None
        if plots:
            from raitner.reproduce.plots import plot_study

            target = folder / "plots" / f"{study['name']}.png"
            if plot_study(study, target):
                path = f"plots/{study['name']}.png"
        plot_paths[study["name"]] = path
        study["plot_file"] = path
        with atomic_write(folder / f"{study['name']}.md") as handle:
            handle.write(study_markdown(study, results["verdict_rule"], path))
    with atomic_write(folder / "results.json") as handle:
        json.dump(results, handle, ensure_ascii=False, indent=2)
        handle.write("\n")
    with atomic_write(folder / "README.md") as handle:
        handle.write(index_markdown(results, plot_paths))
    return results
