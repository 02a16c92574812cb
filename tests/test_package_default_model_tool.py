"""tools/package_default_model.py --into: a trained folder written elsewhere than the package,
with float16 weights, no machine path and a card rendered from its settings."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[1] / "tools" / "package_default_model.py"
PACKAGED = Path(__file__).resolve().parents[1] / "src" / "raitner" / "default_model"


def _tool():
    spec = importlib.util.spec_from_file_location("package_default_model", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_into_writes_a_candidate_folder_and_leaves_the_package_alone(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file, save_file

    trained = tmp_path / "trained"
    shutil.copytree(PACKAGED, trained)
    weights = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3) / 7}
    save_file(weights, trained / "adapter_model.safetensors")
    info = json.loads((trained / "raitner.json").read_text())
    info["base_model"]["path"] = "/home/someone/.cache/raitner/models/smollm2"
    info.pop("inference", None)  # the packaged model's decoding defaults, set below instead
    (trained / "raitner.json").write_text(json.dumps(info))
    packaged_before = (PACKAGED / "adapter_model.safetensors").read_bytes()

    target = tmp_path / "models" / "candidates" / "c1"
    monkeypatch.setattr(sys, "argv", ["package", str(trained), "--into", str(target)])
    _tool().main()

    assert (PACKAGED / "adapter_model.safetensors").read_bytes() == packaged_before
    stored = load_file(target / "adapter_model.safetensors")
    assert stored["w"].dtype == torch.float16
    assert torch.allclose(stored["w"].float(), weights["w"], atol=1e-3)
    written = json.loads((target / "raitner.json").read_text())
    assert written["base_model"]["path"] is None
    assert (target / "README.md").read_text().strip()
    assert (target / "tokenizer.json").read_bytes() == (PACKAGED / "tokenizer.json").read_bytes()

    # a bias set on the candidate in place, without a model folder
    monkeypatch.setattr(sys, "argv", ["package", "--empty-bias", "0.5", "--into", str(target)])
    _tool().main()
    assert json.loads((target / "raitner.json").read_text())["inference"] == {"empty_bias": 0.5}
    assert (PACKAGED / "adapter_model.safetensors").read_bytes() == packaged_before

    # close_lists set beside it, the card says so; then both removed again
    monkeypatch.setattr(sys, "argv", ["package", "--close-lists", "--into", str(target)])
    _tool().main()
    written = json.loads((target / "raitner.json").read_text())
    assert written["inference"] == {"empty_bias": 0.5, "close_lists": True}
    assert "`close_lists`" in (target / "README.md").read_text()
    argv = ["package", "--no-close-lists", "--empty-bias", "0", "--into", str(target)]
    monkeypatch.setattr(sys, "argv", argv)
    _tool().main()
    assert "inference" not in json.loads((target / "raitner.json").read_text())
    assert "close_lists" not in (target / "README.md").read_text()


def test_vote_members_are_packaged_inside_the_folder(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file, save_file

    folders = []
    for seed in (1, 2):
        trained = tmp_path / f"trained-{seed}"
        shutil.copytree(PACKAGED, trained)
        weights = {"w": torch.full((2, 3), float(seed), dtype=torch.float32)}
        save_file(weights, trained / "adapter_model.safetensors")
        info = json.loads((trained / "raitner.json").read_text())
        info["base_model"]["path"] = "/home/someone/models/smollm2"
        info["inference"] = {"close_lists": True, "vote_with": ["gone"]}
        (trained / "raitner.json").write_text(json.dumps(info))
        folders.append(trained)
    target = tmp_path / "candidate"
    argv = ["package", str(folders[0]), "--vote-with", str(folders[1]), "--into", str(target)]
    monkeypatch.setattr(sys, "argv", argv)
    _tool().main()

    written = json.loads((target / "raitner.json").read_text())
    assert written["inference"] == {"close_lists": True, "vote_with": ["vote-1"]}
    member = json.loads((target / "vote-1" / "raitner.json").read_text())
    assert member["base_model"]["path"] is None
    assert member["inference"] == {"close_lists": True}  # decodes alike when loaded alone
    stored = load_file(target / "vote-1" / "adapter_model.safetensors")
    assert stored["w"].dtype == torch.float16 and float(stored["w"][0, 0]) == 2.0
    assert float(load_file(target / "adapter_model.safetensors")["w"][0, 0]) == 1.0
    assert "a vote of this model and 1 more" in (target / "README.md").read_text()

    # in place: the packaged model kept as it is, its member replaced by another
    monkeypatch.setattr(
        sys, "argv", ["package", "--vote-with", str(folders[0]), "--into", str(target)]
    )
    _tool().main()
    assert float(load_file(target / "adapter_model.safetensors")["w"][0, 0]) == 1.0
    assert float(load_file(target / "vote-1" / "adapter_model.safetensors")["w"][0, 0]) == 1.0
    assert sorted(path.name for path in target.iterdir() if path.is_dir()) == ["vote-1"]
    # packaged again without members: no vote
    monkeypatch.setattr(sys, "argv", ["package", str(folders[1]), "--into", str(target)])
    _tool().main()
    assert json.loads((target / "raitner.json").read_text())["inference"] == {"close_lists": True}
    assert not (target / "vote-1").exists()
