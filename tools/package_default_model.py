"""Copy a trained raitner model folder into the package as its default model.

    python tools/package_default_model.py runs/default-en/export-140 [--empty-bias 0.75]
    python tools/package_default_model.py --empty-bias 0.75   # the packaged model, in place
    python tools/package_default_model.py --close-lists       # the same
    python tools/package_default_model.py runs/…/model --into models/candidates/NAME
    python tools/package_default_model.py --vote-with runs/…/seed1/model   # add a vote member

The LoRA weights are stored in float16 (half the size; they are cast back to the base model's
dtype when loaded), the machine-specific base-model path is removed from ``raitner.json`` (the
embedded default is found by name), the model card is rendered from the settings packaged,
and the folder replaces ``src/raitner/default_model`` whole (staged beside it, so an interrupted
run leaves the old one). ``--empty-bias`` sets the decoding default ``inference.empty_bias`` in
``raitner.json`` (:mod:`raitner.infer.empty_bias`; 0 removes it) and re-renders the model card;
without a model folder it changes only that, in the packaged model; ``--close-lists`` /
``--no-close-lists`` set or remove ``inference.close_lists`` the same way
(:mod:`raitner.infer.list_ending`). ``--into DIR`` writes the
same folder elsewhere instead (a candidate kept in the repository until an evaluation decides;
its tokenizer files are the default's, so git stores them once). ``--vote-with FOLDER``
(repeatable) packages each further model the same way into ``vote-1``, ``vote-2`` … inside the
folder and lists them in ``inference.vote_with``, so that the model answers with their vote
(:mod:`raitner.infer.voting`); without a model folder the packaged model is kept as it is and
gets those members (replacing any it had).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

PACKAGED = Path(__file__).resolve().parents[1] / "src" / "raitner" / "default_model"
KEEP = (
    "adapter_config.json",
    "adapter_model.safetensors",
    "chat_template.jinja",
    "raitner.json",
    "README.md",
    "tokenizer.json",
    "tokenizer_config.json",
    "trainer_state.json",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "model", type=Path, nargs="?", help="a model folder written by raitner train"
    )
    parser.add_argument(
        "--empty-bias",
        type=float,
        help="the model's default empty-answer bias (raitner.json inference.empty_bias)",
    )
    parser.add_argument(
        "--close-lists",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="whether the model decodes with close_lists by default (inference.close_lists)",
    )
    parser.add_argument(
        "--vote-with",
        type=Path,
        action="append",
        default=[],
        metavar="FOLDER",
        help="a further model folder (same base and template) whose answers are voted with "
        "the model's (inference.vote_with); repeat for more",
    )
    parser.add_argument(
        "--into",
        type=Path,
        default=PACKAGED,
        help="where to write the folder (default: the package's default model, replaced)",
    )
    args = parser.parse_args()
    if args.model is None and args.vote_with:
        args.model = args.into  # the packaged model as it is, with new vote members
    if args.model is None:
        if args.empty_bias is None and args.close_lists is None:
            parser.error("give a model folder, --empty-bias / --close-lists, or both")
        info = json.loads((args.into / "raitner.json").read_text(encoding="utf-8"))
        _write_settings(args.into, _with_decoding(info, args.empty_bias, args.close_lists))
        if args.empty_bias is not None:
            print(f"set the empty-answer bias of {args.into} to {args.empty_bias:g}")
        if args.close_lists is not None:
            print(f"set close_lists of {args.into} to {args.close_lists}")
        return
    from raitner.atomic import atomic_directory

    info = _packaged_settings(args.model)
    info = _with_decoding(info, args.empty_bias, args.close_lists)
    members = [_packaged_settings(member) for member in args.vote_with]
    for member, member_info in zip(args.vote_with, members, strict=True):
        if member_info.get("template") != info.get("template"):
            raise SystemExit(
                f"{member} was trained with the template {member_info.get('template')!r}, "
                f"{args.model} with {info.get('template')!r}: they cannot vote"
            )
    # the folder holds the members given here and no others
    inference = {k: v for k, v in info.get("inference", {}).items() if k != "vote_with"}
    names = [f"vote-{number}" for number in range(1, len(args.vote_with) + 1)]
    if names:
        inference["vote_with"] = names
    else:
        inference.pop("min_votes", None)
    info = {key: value for key, value in info.items() if key != "inference"}
    if inference:
        info["inference"] = inference
    args.into.parent.mkdir(parents=True, exist_ok=True)
    # a member decodes as the model does when it is loaded alone, too
    decoding = {k: v for k, v in inference.items() if k not in ("vote_with", "min_votes")}
    with atomic_directory(args.into, replace=True) as staging:
        _copy_model(args.model, staging, info)
        for name, member, member_info in zip(names, args.vote_with, members, strict=True):
            member_info = {k: v for k, v in member_info.items() if k != "inference"}
            if decoding:
                member_info["inference"] = decoding
            (staging / name).mkdir()
            _copy_model(member, staging / name, member_info)
    voting = f" (voting with {', '.join(names)})" if names else ""
    print(f"packaged {args.model} into {args.into}{voting}")


def _packaged_settings(model: Path) -> dict:
    """A model folder's ``raitner.json`` with the machine-specific base-model path removed
    (the embedded default is found by name)."""
    info = json.loads((model / "raitner.json").read_text(encoding="utf-8"))
    if not info["base_model"].get("embedded"):
        raise SystemExit(f"{model} was not trained on an embedded base model")
    info["base_model"]["path"] = None
    return info


def _copy_model(model: Path, staging: Path, info: dict) -> None:
    """The files of ``KEEP`` from ``model`` into ``staging``: the LoRA weights in float16,
    ``raitner.json`` and the model card from ``info``."""
    import torch
    from safetensors.torch import load_file, save_file

    for name in KEEP:
        source = model / name
        if not source.is_file():
            raise SystemExit(f"{source} is missing")
        if name == "adapter_model.safetensors":
            weights = {k: v.to(torch.float16) for k, v in load_file(source).items()}
            save_file(weights, staging / name, metadata={"format": "pt"})
        elif name not in ("raitner.json", "README.md"):
            shutil.copyfile(source, staging / name)
    # the card is rendered from the settings packaged, not copied from training time
    _write_settings(staging, info)


def _with_decoding(info: dict, bias: float | None, close_lists: bool | None) -> dict:
    """``info`` with the decoding defaults given (None: kept; 0 or False: removed)."""
    from raitner.api import inference_defaults_of

    inference = inference_defaults_of(info)
    for key, value in (("empty_bias", bias), ("close_lists", close_lists)):
        if value is None:
            continue
        inference[key] = value
        if not value:
            inference.pop(key)
    updated = {key: value for key, value in info.items() if key != "inference"}
    return {**updated, "inference": inference} if inference else updated


def _write_settings(folder: Path, info: dict) -> None:
    """``raitner.json`` and the model card rendered from it, each replaced whole."""
    from raitner.atomic import atomic_write
    from raitner.train.model_card import render_model_card

    with atomic_write(folder / "raitner.json") as handle:
        handle.write(json.dumps(info, indent=2) + "\n")
    with atomic_write(folder / "README.md") as handle:
        handle.write(render_model_card(info))


if __name__ == "__main__":
    main()
