"""Copy a trained raitner model folder into the package as its default model.

    python tools/package_default_model.py runs/default-en/export-140 [--empty-bias 0.75]
    python tools/package_default_model.py --empty-bias 0.75   # the packaged model, in place
    python tools/package_default_model.py --close-lists       # the same
    python tools/package_default_model.py runs/…/model --into models/candidates/NAME

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
its tokenizer files are the default's, so git stores them once).
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
        "--into",
        type=Path,
        default=PACKAGED,
        help="where to write the folder (default: the package's default model, replaced)",
    )
    args = parser.parse_args()
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
    import torch
    from safetensors.torch import load_file, save_file

    from raitner.atomic import atomic_directory

    info = json.loads((args.model / "raitner.json").read_text(encoding="utf-8"))
    info = _with_decoding(info, args.empty_bias, args.close_lists)
    if not info["base_model"].get("embedded"):
        raise SystemExit(f"{args.model} was not trained on an embedded base model")
    info["base_model"]["path"] = None
    args.into.parent.mkdir(parents=True, exist_ok=True)
    with atomic_directory(args.into, replace=True) as staging:
        for name in KEEP:
            source = args.model / name
            if not source.is_file():
                raise SystemExit(f"{source} is missing")
            if name == "adapter_model.safetensors":
                weights = {k: v.to(torch.float16) for k, v in load_file(source).items()}
                save_file(weights, staging / name, metadata={"format": "pt"})
            elif name == "raitner.json":
                (staging / name).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
            else:
                shutil.copyfile(source, staging / name)
        # the card is rendered from the settings packaged, not copied from training time
        _write_settings(staging, info)
    print(f"packaged {args.model} into {args.into}")


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
