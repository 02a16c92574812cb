"""``raitner reproduce CONFIG``: run a study config (``configs/reproduce/*.yaml``) end to end."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_RESULTS = Path("runs") / "reproduce"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "reproduce",
        help="re-run the paper's studies from a study config (build → train → eval → report)",
        description=(
            "Run every stage a study config needs (training sets, LoRA models, evaluations), "
            "each once even when several studies share it, and write results.json, one "
            "markdown table per study with the paper's numbers and a verdict, and plots. "
            "A rerun skips finished stages and resumes interrupted ones."
        ),
    )
    parser.add_argument("config", type=Path, help="study config (YAML or JSON)")
    parser.add_argument(
        "--results",
        type=Path,
        help=f"results folder (default: {DEFAULT_RESULTS}/<config name>)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="STUDY",
        help="run only these studies (the report still shows every study's finished results)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan: every stage, what is done and what remains; run nothing",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value (dotted path, YAML value), e.g. base_model=/path/model, "
        "sizes.main=200, train.max_steps=2, eval.limit=20, studies.0.seeds=[1]; repeatable",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="run no stage; write the report (tables, verdicts, plots) from the stages "
        "finished so far, e.g. while another process is still running the plan",
    )
    parser.add_argument("--no-plots", action="store_true", help="write tables only, no PNGs")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--data-root",
        help="folder laid out like shared/data (en/…, zh/…); default: the config's data_root, "
        "else $RAITNER_DATA",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    import logging

    from raitner.reproduce.config import read_config
    from raitner.reproduce.runner import reproduce

    config = read_config(args.config, args.overrides)
    results = args.results or DEFAULT_RESULTS / config.name
    if args.dry_run and args.report_only:
        raise ValueError("--dry-run writes nothing and --report-only writes the report: pick one")
    if not args.dry_run:
        logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
        logging.getLogger("raitner").setLevel(logging.INFO)
    reproduce(
        config,
        results,
        only=args.only,
        dry_run=args.dry_run,
        report_only=args.report_only,
        data_root=args.data_root,
        out=lambda line: print(line, flush=True),
        show_progress=not args.quiet,
        plots=not args.no_plots,
    )
    return 0
