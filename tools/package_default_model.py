"""Copy a trained raitner model folder into the package as its default model.

    python tools/package_default_model.py runs/default-en/export-140

The LoRA weights are stored in float16 (half the size; they are cast back to the base model's
dtype when loaded), the machine-specific base-model path is removed from ``raitner.json`` (the
embedded default is found by name), and the folder replaces ``src/raitner/default_model``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
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
    parser.add_argument("model", type=Path, help="a model folder written by raitner train")
    args = parser.parse_args()
    import torch
    from safetensors.torch import load_file, save_file

    info = json.loads((args.model / "raitner.json").read_text(encoding="utf-8"))
    if not info["base_model"].get("embedded"):
        raise SystemExit(f"{args.model} was not trained on an embedded base model")
    info["base_model"]["path"] = None
    staging = Path(tempfile.mkdtemp(prefix=".default_model.", dir=PACKAGED.parent))
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
    # mkdtemp and safetensors create owner-only entries; a package folder is world-readable
    staging.chmod(0o755)
    for entry in staging.iterdir():
        entry.chmod(0o644)
    shutil.rmtree(PACKAGED, ignore_errors=True)
    staging.rename(PACKAGED)
    print(f"packaged {args.model} into {PACKAGED}")


if __name__ == "__main__":
    main()
