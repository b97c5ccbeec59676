"""The model catalog: every entry loads and costs something; names, paths and errors behave."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from budget.catalog import FAMILIES, MODELS_DIR, ModelSpec, get_model, list_models
from budget.errors import ConfigError, UnknownModelError
from budget.flops import param_counts, sample_cost, tower_gflops

REQUIRED = ("ViT-S-32", "ViT-S-16", "ViT-M-32", "ViT-M-16", "ViT-B-32", "ViT-B-16", "ViT-L-16", "ViT-L-14",
            "ViT-H-14", "ViT-g-14", "ViT-bigG-14", "RN50", "RN101", "RN50x4", "convnext_tiny", "ViT-Ti-16",
            "tiny-vit-s-28", "tiny-vit-28", "tiny-vit-l-28", "tiny-vit-32", "tiny-rn-32")
ALL = list_models()
_RAN: list[str] = []


def test_required_entries_exist_as_files():
    files = sorted(p.stem for p in MODELS_DIR.glob("*.json"))
    assert files == sorted(ALL, key=str) or sorted(files) == sorted(ALL)
    missing = [n for n in REQUIRED if not (MODELS_DIR / f"{n}.json").is_file()]
    assert not missing, f"catalog files missing: {missing}"
    assert len(ALL) >= 60  # 66 open_clip configs + 6 hand-written at open_clip 3.3.0


@pytest.mark.parametrize("name", ALL)
def test_every_entry_loads_and_costs(name):
    spec = get_model(name)
    assert spec.name == name and spec.family in FAMILIES
    raw = json.loads((MODELS_DIR / f"{name}.json").read_text())
    assert spec.config == raw
    assert raw["clipbudget"]["family"] == spec.family and raw["clipbudget"]["source"]
    image, text = tower_gflops(spec)
    assert image > 0 and text > 0
    p_img, p_txt = param_counts(spec)
    assert p_img > 0 and p_txt > 0
    cost = sample_cost(spec)
    assert cost.forward_gflops == pytest.approx(image + text)
    if spec.tiny:
        assert spec.vision.image_size in range(28, 33) and spec.text.context_length == 16
        assert cost.forward_gflops < 0.5
    else:
        assert cost.forward_gflops > 1.0
    _RAN.append(name)


def test_every_entry_ran():
    # Runs after the parametrized test above (file order): a filter or a collection slip would show here.
    if len(_RAN) == 0 and os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.skip("parametrized cases ran in another worker")
    assert sorted(_RAN) == sorted(ALL), f"only {len(_RAN)} of {len(ALL)} catalog entries were checked"


def test_config_is_a_deep_copy_on_every_access():
    spec = get_model("ViT-B-32")
    cfg = spec.config
    cfg["vision_cfg"]["width"] = 1
    assert spec.config["vision_cfg"]["width"] == 768
    assert get_model("ViT-B-32").config["vision_cfg"]["width"] == 768
    assert "clipbudget" not in spec.open_clip_config
    assert isinstance(spec, ModelSpec) and hash(spec) == hash(get_model("ViT-B-32"))


def test_names_are_case_insensitive():
    assert get_model("vit-b-32").name == "ViT-B-32"


def test_unknown_name_suggests_nearest():
    with pytest.raises(UnknownModelError) as err:
        get_model("ViT-B-33")
    msg = str(err.value)
    assert "ViT-B-33" in msg and "ViT-B-32" in msg and "\n" not in msg
    assert isinstance(err.value, ConfigError)


def test_custom_config_by_path(tmp_path):
    cfg = get_model("ViT-B-32").open_clip_config
    cfg["vision_cfg"]["layers"] = 6
    path = tmp_path / "my-vit.json"
    path.write_text(json.dumps(cfg))
    spec = get_model(str(path))
    assert spec.name == "my-vit" and spec.path == str(path) and spec.vision.layers == 6
    half = tower_gflops(spec)[0]
    assert half < tower_gflops("ViT-B-32")[0] * 0.52


@pytest.mark.parametrize("content, needle", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    ('{"embed_dim": 512}', "missing vision_cfg, text_cfg"),
    ('{"embed_dim": 512, "vision_cfg": {"layers": 12, "width": 768, "patch_size": 30}, "text_cfg": {}}',
     "not a multiple of patch_size"),
    ('{"embed_dim": 512, "vision_cfg": {"timm_model_name": "swin_base_patch4_window7_224"}, "text_cfg": {}}',
     "not supported"),
    ('{"embed_dim": 512, "vision_cfg": {}, "text_cfg": {"hf_model_name": "roberta-base"}}', "HuggingFace"),
    ('{"embed_dim": -1, "vision_cfg": {}, "text_cfg": {}}', "embed_dim"),
])
def test_invalid_custom_config_is_one_line_config_error(tmp_path, content, needle):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ConfigError) as err:
        get_model(str(path))
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_missing_and_unreadable_paths(tmp_path):
    with pytest.raises(UnknownModelError, match="does not exist"):
        get_model(str(tmp_path / "nope.json"))
    folder = tmp_path / "dir.json"
    folder.mkdir()
    with pytest.raises(ConfigError):
        get_model(str(folder))


def test_importing_budget_loads_no_heavy_module():
    code = ("import sys, budget.catalog, budget.flops, budget.units, budget.hardware;"
            "budget.flops.sample_cost('ViT-B-32', 'flip'); budget.units.parse_budget(gflops=1e10).describe();"
            "print(','.join(m for m in ('torch', 'numpy', 'pandas', 'open_clip', 'scipy', 'pyarrow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == ""
