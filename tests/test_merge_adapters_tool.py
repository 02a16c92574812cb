"""tools/merge_adapters.py on two LoRA folders over the tiny model."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from raitner.api import OpenNER

TOOL = Path(__file__).resolve().parents[1] / "tools" / "merge_adapters.py"
TEXTS = ["Barack Obama visited Paris in May.", "Acme Corp hired Jane Doe."]
LABELS = ["person", "location"]


def _tool():
    spec = importlib.util.spec_from_file_location("merge_adapters", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _lora_folder(folder: Path, base: Path, seed: int, **overrides) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from test_api import load, write_model_folder

    model, tokenizer = load(base)
    torch.manual_seed(seed)
    config = LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    write_model_folder(folder, base, get_peft_model(model, config), tokenizer, **overrides)
    return folder


def _merged_weights(folder: Path, base: Path) -> dict:
    from peft import PeftModel
    from test_api import load

    model, _ = load(base)
    return PeftModel.from_pretrained(model, folder).merge_and_unload().state_dict()


@pytest.fixture(scope="module")
def two_adapters(lively_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("peft")
    root = tmp_path_factory.mktemp("adapters")
    first = _lora_folder(root / "first", lively_model_dir, seed=3)
    second = _lora_folder(root / "second", lively_model_dir, seed=4)
    return first, second


def test_the_merge_adds_the_weighted_updates_of_its_inputs(
    two_adapters, lively_model_dir: Path, tmp_path: Path
) -> None:
    import torch
    from test_api import load

    first, second = two_adapters
    output = tmp_path / "soup"
    _tool().main([str(first), str(second), "-o", str(output), "--weights", "0.25,0.75"])

    base = load(lively_model_dir)[0].state_dict()
    a = _merged_weights(first, lively_model_dir)
    b = _merged_weights(second, lively_model_dir)
    merged = _merged_weights(output, lively_model_dir)
    changed = [name for name in base if not torch.equal(a[name], base[name])]
    assert changed and all("q_proj" in name or "v_proj" in name for name in changed)
    for name in base:
        expected = base[name] + 0.25 * (a[name] - base[name]) + 0.75 * (b[name] - base[name])
        torch.testing.assert_close(merged[name], expected, rtol=0, atol=1e-5)

    adapter = json.loads((output / "adapter_config.json").read_text(encoding="utf-8"))
    assert adapter["r"] == 8  # the two rank-4 adapters side by side
    info = json.loads((output / "raitner.json").read_text(encoding="utf-8"))
    assert [entry["weight"] for entry in info["merged_from"]["inputs"]] == [0.25, 0.75]
    assert [entry["folder"] for entry in info["merged_from"]["inputs"]] == [str(first), str(second)]
    assert info["template"] == "ra-it-en-v1"
    assert sorted(p.name for p in output.iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
        "chat_template.jinja",
        "raitner.json",
        "tokenizer.json",
        "tokenizer_config.json",
    ]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "staging left behind"


def test_a_merge_weighted_on_one_input_answers_as_that_input(two_adapters, tmp_path: Path) -> None:
    first, second = two_adapters
    output = tmp_path / "only-second"
    _tool().main([str(first), str(second), "-o", str(output), "--weights", "0,1"])
    merged = OpenNER.from_pretrained(output, max_new_tokens=12).raw_answers(TEXTS, LABELS)
    expected = OpenNER.from_pretrained(second, max_new_tokens=12).raw_answers(TEXTS, LABELS)
    other = OpenNER.from_pretrained(first, max_new_tokens=12).raw_answers(TEXTS, LABELS)
    assert merged == expected
    assert other != expected, "the two adapters must answer differently for this to test anything"


def test_folders_that_cannot_be_merged_are_refused(
    two_adapters, lively_model_dir: Path, tmp_path: Path
) -> None:
    tool = _tool()
    first, second = two_adapters
    output = tmp_path / "out"
    with pytest.raises(SystemExit, match="got 3 weights for 2 model folders"):
        tool.main([str(first), str(second), "-o", str(output), "--weights", "1,1,1"])
    with pytest.raises(SystemExit, match="expected comma-separated numbers"):
        tool.main([str(first), str(second), "-o", str(output), "--weights", "half,half"])
    with pytest.raises(SystemExit, match="not a raitner model folder"):
        tool.main([str(first), str(lively_model_dir), "-o", str(output)])
    other_template = _lora_folder(
        tmp_path / "zh", lively_model_dir, seed=5, template="ra-it-zh-v1", templates={}
    )
    with pytest.raises(SystemExit, match="template 'ra-it-zh-v1' differs"):
        tool.main([str(first), str(other_template), "-o", str(output)])
    output.mkdir()
    with pytest.raises(SystemExit, match="exists; choose a new folder"):
        tool.main([str(first), str(second), "-o", str(output)])
    assert list(output.iterdir()) == []
