"""PNG plots of a study in the spirit of the paper's Figures 2-5 (needs matplotlib).

``bars`` (Figures 3-5): one point per arm, the mean over seeds with the seed range as an error
bar (the axis is zoomed to the values, so points rather than bars); ``lines`` (Figure 2,
Tables 1/2): average F1 against the data size, one line per recipe and inference setting.
When the config gives the paper's numbers, a second panel shows them the same way: the
paper's scale is far above a small model's, so the two do not share an axis.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from raitner.atomic import atomic_write
from raitner.reproduce.tables import seed_averages


def _series(arms: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    series: dict[str, list[dict[str, Any]]] = {}
    for arm in arms:
        key = arm["training"]
        if arm["inference_label"] != "no examples":
            key += f"; {arm['inference_label']}"
        series.setdefault(key, []).append(arm)
    return series


def arm_label(arm: dict[str, Any], study_seeds: list[int]) -> str:
    """The arm's name, with the seeds it stands on when those are fewer than the study's (a
    point without an error bar then reads as one seed, not as seeds that agreed)."""
    finished = sorted(seed_averages(arm))
    if not finished or len(finished) >= len(study_seeds):
        return arm["name"]
    word = "seed" if len(finished) == 1 else "seeds"
    return f"{arm['name']} ({word} {', '.join(map(str, finished))})"


def _dots(
    axis: Any,
    arms: list[dict[str, Any]],
    values: list[float | None],
    errors=None,
    labels: list[str] | None = None,
) -> None:
    """One point per arm (the y axis is zoomed to the values, as in the paper's figures, so
    points rather than bars), its value written beside it."""
    positions = list(range(len(arms)))
    shown = [(p, v) for p, v in zip(positions, values, strict=True) if v is not None]
    if shown:
        xs, ys = zip(*shown, strict=True)
        yerr = None
        if errors is not None:
            yerr = [[errors[0][p] for p in xs], [errors[1][p] for p in xs]]
        axis.errorbar(xs, ys, yerr=yerr, fmt="o", capsize=4, color="#4878a8")
        for x, y in shown:
            axis.annotate(f"{y:.2f}", (x, y), textcoords="offset points", xytext=(6, 4), fontsize=7)
    for position, value in zip(positions, values, strict=True):
        if value is None:
            axis.annotate(
                "not run",
                (position, 0.5),
                xycoords=("data", "axes fraction"),
                ha="center",
                fontsize=7,
                color="grey",
            )
    axis.set_xticks(positions)
    names = labels if labels is not None else [arm["name"] for arm in arms]
    axis.set_xticklabels(names, rotation=35, ha="right", fontsize=8)
    axis.set_xlim(-0.5, len(arms) - 0.5)
    axis.grid(axis="y", alpha=0.3)


def plot_study(study: dict[str, Any], path: str | Path) -> bool:
    """Write the study's plot to ``path``; False (and nothing written) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    arms = study["arms"]
    with_paper = [arm for arm in arms if arm["paper"] is not None]
    panels = 2 if with_paper else 1
    figure, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 4.2), squeeze=False)
    ours, paper_axis = axes[0][0], axes[0][1] if panels == 2 else None
    metric = {"ra_it": "RA-IT F1", "uniner": "UniNER F1", "span": "span F1"}[study["metric"]]
    if study["plot"] == "lines":
        for label, members in _series(arms).items():
            members = [arm for arm in members if arm["size"] is not None]
            members.sort(key=lambda arm: arm["size"])
            xs = [arm["size"] for arm in members if arm["mean"] is not None]
            ys = [arm["mean"] for arm in members if arm["mean"] is not None]
            low = [arm["mean"] - arm["min"] for arm in members if arm["mean"] is not None]
            high = [arm["max"] - arm["mean"] for arm in members if arm["mean"] is not None]
            if xs:
                ours.errorbar(xs, ys, yerr=[low, high], marker="o", capsize=3, label=label)
        ours.set_xscale("log")
        ours.set_xlabel("training conversations")
        if paper_axis is not None:
            for label, members in _series(with_paper).items():
                names = [arm["paper_note"] or arm["name"] for arm in members]
                paper_axis.plot(names, [arm["paper"] for arm in members], marker="s", label=label)
            paper_axis.set_xlabel("paper's data size")
    else:
        means = [arm["mean"] for arm in arms]
        errors = [
            [0.0 if arm["mean"] is None else arm["mean"] - arm["min"] for arm in arms],
            [0.0 if arm["mean"] is None else arm["max"] - arm["mean"] for arm in arms],
        ]
        _dots(ours, arms, means, errors, [arm_label(arm, study["seeds"]) for arm in arms])
        if paper_axis is not None:
            _dots(paper_axis, with_paper, [arm["paper"] for arm in with_paper])
    ours.set_ylabel(f"average {metric} (%)")
    ours.set_title(
        f"ours: {study['name']} (seeds {', '.join(map(str, study['seeds']))})", fontsize=9
    )
    if study["plot"] == "lines" and ours.get_legend_handles_labels()[0]:
        ours.legend(fontsize=7)
    if paper_axis is not None:
        paper_axis.set_ylabel("average F1 (%)")
        paper_axis.set_title(f"paper: {study['source'] or 'reported'}", fontsize=9)
        if study["plot"] == "lines" and paper_axis.get_legend_handles_labels()[0]:
            paper_axis.legend(fontsize=7)
    figure.suptitle(study["title"], fontsize=10)
    figure.tight_layout()
    path = Path(path)
    with atomic_write(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=110)
    plt.close(figure)
    return True
