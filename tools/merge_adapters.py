"""Merge the LoRA adapters of several raitner model folders into one (a weighted model soup).

    python tools/merge_adapters.py A B -o MERGED [--weights 0.5,0.5]

Every folder must be a LoRA model folder written by ``raitner train`` on the same base model with
the same prompt template. The merged adapter is peft's ``cat`` combination, which is exact: its
weight update is the weighted sum of the inputs' updates (its rank is the sum of their ranks).
Weights default to equal shares summing to 1, i.e. the average of the fine-tuned weights.
MERGED gets the first folder's tokenizer, chat template and ``raitner.json`` (so its retrieval
settings and decoding defaults too), where ``merged_from`` records the folders, weights and
training sets, and no model card (each input's card describes its own training). It is written
to a staging folder and renamed into place, so an interrupted run leaves nothing behind.
Evaluate it like any model folder (``raitner eval --model MERGED``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
if str(SRC) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(SRC))

from raitner.api import base_model_of, read_model_config  # noqa: E402
from raitner.atomic import atomic_directory  # noqa: E402
from raitner.models import MODEL_CONFIG_FILE  # noqa: E402

#: Files taken from the first folder as they are (the adapter files are written anew).
COPIED = ("chat_template.jinja", "tokenizer.json", "tokenizer_config.json")
MERGED_NAME = "merged"


def parse_weights(text: str | None, count: int) -> list[float]:
    """``"0.5,0.5"`` as floats, one per folder; None: equal shares summing to 1."""
    if text is None:
        return [1.0 / count] * count
    try:
        weights = [float(part) for part in text.split(",")]
    except ValueError:
        raise SystemExit(f"--weights: expected comma-separated numbers, got {text!r}") from None
    if len(weights) != count:
        raise SystemExit(f"--weights: got {len(weights)} weights for {count} model folders")
    return weights


def read_folders(folders: list[Path]) -> list[dict]:
    """The ``raitner.json`` of each folder, checked to share a base model and a template."""
    configs = []
    for folder in folders:
        config = read_model_config(folder)
        if config is None:
            raise SystemExit(f"{folder}: not a raitner model folder (no {MODEL_CONFIG_FILE})")
        if not (folder / "adapter_config.json").is_file():
            raise SystemExit(f"{folder}: no adapter_config.json; only LoRA folders can be merged")
        configs.append(config)
    first = configs[0]
    for folder, config in zip(folders[1:], configs[1:], strict=True):
        for key in ("base_model", "template", "templates"):
            mine = _comparable(first.get(key))
            theirs = _comparable(config.get(key))
            if mine != theirs:
                raise SystemExit(f"{folder}: {key} {theirs!r} differs from {folders[0]}'s {mine!r}")
    return configs


def _comparable(value):
    """A base-model record without its machine-specific path, other values as they are."""
    if isinstance(value, dict) and "path" in value:
        return {k: v for k, v in value.items() if k != "path"}
    return value


def merge(folders: list[Path], weights: list[float], output: Path) -> Path:
    """Write the weighted merge of ``folders``' adapters to ``output`` (which must not exist)."""
    if output.exists():
        raise SystemExit(f"{output} exists; choose a new folder")
    configs = read_folders(folders)
    from peft import PeftModel

    from raitner.models import load_causal_lm, quiet_peft_wrapping

    base, _ = load_causal_lm(base_model_of(configs[0]), device="cpu", dtype="fp32")
    names = [f"input{index}" for index in range(len(folders))]
    with quiet_peft_wrapping():
        model = PeftModel.from_pretrained(base, folders[0], adapter_name=names[0])
        for name, folder in zip(names[1:], folders[1:], strict=True):
            model.load_adapter(folder, adapter_name=name)
    model.add_weighted_adapter(names, weights, MERGED_NAME, combination_type="cat")
    model.set_adapter(MERGED_NAME)
    for name in names:
        model.delete_adapter(name)

    with atomic_directory(output) as staging:
        model.save_pretrained(staging / "peft", selected_adapters=[MERGED_NAME])
        saved = staging / "peft" / MERGED_NAME
        for name in ("adapter_config.json", "adapter_model.safetensors"):
            shutil.move(saved / name, staging / name)
        shutil.rmtree(staging / "peft")
        for name in COPIED:
            if (folders[0] / name).is_file():
                shutil.copyfile(folders[0] / name, staging / name)
        config = dict(configs[0])
        config.pop("result", None)
        config["merged_from"] = {
            "combination": "cat",
            "inputs": [
                {
                    "folder": str(folder),
                    "weight": weight,
                    "datasets": (each.get("training") or {}).get("datasets"),
                }
                for folder, weight, each in zip(folders, weights, configs, strict=True)
            ],
        }
        (staging / MODEL_CONFIG_FILE).write_text(
            json.dumps(config, indent=2) + "\n", encoding="utf-8"
        )
    return output


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", type=Path, nargs="+", help="raitner LoRA model folders")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the new model folder")
    parser.add_argument(
        "--weights", help="comma-separated weight per folder (default: equal, summing to 1)"
    )
    args = parser.parse_args(argv)
    if len(args.folders) < 2:
        parser.error("give at least two model folders")
    weights = parse_weights(args.weights, len(args.folders))
    output = merge(args.folders, weights, args.output)
    terms = " + ".join(f"{w:g} x {f}" for w, f in zip(weights, args.folders, strict=True))
    print(f"wrote {output} ({terms})")


if __name__ == "__main__":
    main()
