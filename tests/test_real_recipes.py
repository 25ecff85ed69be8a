"""The Qwen2.5-Omni-3B / 7B recipes: R1-Omni's published settings, and one SFT + one GRPO step each
with the recipe's structure (LoRA, gradient checkpointing, loss type, rewards, TensorBoard, decode
keys) against a tiny checkpoint saved in the full Qwen2.5-Omni layout with the real processor's
settings (patch 14, merge 2, temporal patch 2, 128 mel bins); only sizes and step counts are
overridden. Also: the model card each saved model carries, and loading it with plain transformers
as the card says."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import yaml

from omnibench.grpo import GRPORecipe, run_grpo
from omnibench.recipes import load_recipe
from omnibench.sft import SFTRecipe, run_sft

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parent.parent
RECIPES = ["qwen2_5_omni_3b", "qwen2_5_omni_7b", "qwen2_5_omni_7b_lora"]
#: the real Qwen2.5-Omni video processor's pixel bounds per frame (preprocessor_config.json)
MIN_PIXELS, MAX_PIXELS = 128 * 28 * 28, 768 * 28 * 28
#: tiny sizes for the step test: everything else is the recipe's
TINY = {"max_steps": 1, "decode": {"num_frames": 4, "size": 56, "sr": 16000, "max_audio_s": 30.0},
        "progress": False, "threads": None, "save_steps": 0}


def _path(name: str) -> Path:
    return ROOT / "configs" / f"{name}.yaml"


@pytest.mark.parametrize("name", RECIPES)
def test_recipes_hold_r1_omnis_published_settings(name):
    sft = load_recipe(SFTRecipe, _path(name), section="sft")
    grpo = load_recipe(GRPORecipe, _path(name), section="grpo")
    lora = name.endswith("_lora")
    processes = 1 if lora else 8  # the full recipes run under configs/accelerate/*.yaml (8 processes)
    assert sft.mode == "explained" and sft.split == "cold_start"
    assert sft.epochs == 5 and sft.batch_size * sft.gradient_accumulation_steps * processes == 16
    assert sft.decode["num_frames"] == 8
    assert (grpo.num_generations, grpo.max_completion_length, grpo.beta, grpo.temperature, grpo.epochs) == \
        (8, 512, 0.04, 1.0, 2)
    assert grpo.per_device_train_batch_size % grpo.num_generations == 0
    if not lora:
        assert (sft.learning_rate, grpo.learning_rate) == (2e-5, 1e-6)
        assert sft.lora is None and grpo.lora is None
    else:
        assert sft.lora and sft.lora["r"] > 0 and sft.freeze_vision and sft.freeze_audio
    for recipe in (sft, grpo):
        assert recipe.trainer["gradient_checkpointing"] is True
        assert recipe.dtype == "auto" and recipe.bf16 == "auto"  # float32 master weights, bf16 autocast on a GPU
        assert "tensorboard" in recipe.report_to
        size = recipe.decode["size"]
        assert size % 28 == 0 and MIN_PIXELS <= size * size <= MAX_PIXELS, "frames the real processor keeps as is"
        assert recipe.model.startswith(("models/Qwen2.5-Omni", "runs/"))
    assert grpo.trainer["loss_type"] == "grpo" and grpo.rewards == {"accuracy": 1.0, "format": 1.0}
    assert grpo.model == str(Path(sft.out) / "model"), "GRPO starts from the cold-start model"
    args = grpo.grpo_config()
    assert args.gradient_checkpointing_kwargs == {"use_reentrant": False}
    assert args.ddp_find_unused_parameters is True


@pytest.fixture(scope="module")
def synthemo(tmp_path_factory):
    from omnibench.data.synth import generate

    return generate(tmp_path_factory.mktemp("synthemo"), n_train=4, n_cold_start=4, n_test=0, seed=0, workers=1)


@pytest.fixture(scope="module")
def full_checkpoint(tmp_path_factory):
    from omnibench.tiny.model import save_full_layout

    out = save_full_layout(tmp_path_factory.mktemp("Qwen2.5-Omni-tiny"), seed=0)
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "qwen2_5_omni" and "talker_config" in config
    proc = json.loads((out / "processor_config.json").read_text())
    for part in ("video_processor", "image_processor"):
        p = proc[part]
        assert (p["patch_size"], p["merge_size"], p["temporal_patch_size"]) == (14, 2, 2)
    assert proc["feature_extractor"]["feature_size"] == 128
    return out


def _losses(run: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()
            if "loss" in json.loads(line)]


@pytest.mark.slow
@pytest.mark.parametrize("name", RECIPES)
def test_recipe_steps_from_a_full_layout_checkpoint(name, synthemo, full_checkpoint, tmp_path):
    from omnibench.model.loading import load_model

    sft_model = run_sft(_path(name), model=str(full_checkpoint), manifest=str(synthemo), out=str(tmp_path / "sft"),
                        batch_size=2, gradient_accumulation_steps=1, **TINY)
    recipe = yaml.safe_load((tmp_path / "sft" / "recipe.yaml").read_text())
    assert recipe["trainer"]["gradient_checkpointing"] is True and recipe["learning_rate"] == \
        load_recipe(SFTRecipe, _path(name), section="sft").learning_rate
    assert all(math.isfinite(x) for x in _losses(tmp_path / "sft"))
    assert list((tmp_path / "sft" / "checkpoints").glob("runs/*/events.out.tfevents.*")), "report_to: tensorboard"
    model, _ = load_model(sft_model)
    assert not any("lora" in n for n, _ in model.named_parameters()), "LoRA adapters merged into the saved model"
    assert model.config.omnibench_decode["num_frames"] == 4

    grpo_model = run_grpo(_path(name), model=str(sft_model), manifest=str(synthemo), out=str(tmp_path / "grpo"),
                          num_generations=2, per_device_train_batch_size=2, gradient_accumulation_steps=1,
                          max_completion_length=8, **TINY)
    recipe = yaml.safe_load((tmp_path / "grpo" / "recipe.yaml").read_text())
    assert recipe["trainer"]["loss_type"] == "grpo" and recipe["temperature"] == 1.0 and recipe["beta"] == 0.04
    assert all(math.isfinite(x) for x in _losses(tmp_path / "grpo"))
    card = (grpo_model / "README.md").read_text()
    assert str(sft_model) in card and "Qwen2_5OmniThinkerForConditionalGeneration" in card


@pytest.mark.slow
def test_model_card_describes_the_model_and_its_plain_transformers_snippet_loads_it(synthemo, tmp_path):
    """The card names the base model, recipe, data splits, decode settings, labels and metrics; the
    card's own Python block, run as written (folder path filled in), loads the model with plain
    transformers and gives the same logits as omnibench's loader."""
    import re

    from omnibench.labels import DFEW7
    from omnibench.model.generation import to_device  # noqa: F401 - same input path as evaluation
    from omnibench.model.inputs import ALL, build_inputs
    from omnibench.model.loading import load_model

    folder = run_sft({"manifest": str(synthemo), "model": "tiny", "out": str(tmp_path / "sft"), "max_steps": 1,
                      "batch_size": 2, "progress": False, "threads": None})
    card = (folder / "README.md").read_text()
    for needle in ("**Base model**", "omnibench tiny", "learning_rate = 0.0005", "synthemo / cold_start: 4 clips",
                   "8 frames", ", ".join(DFEW7), "final_loss = ", "optimizer_steps = 1"):
        assert needle in card, f"model card lacks {needle!r}:\n{card}"
    code = re.search(r"```python\n(.*?)```", card, re.DOTALL).group(1).replace("PATH/TO/THIS/FOLDER", str(folder))
    code = code.replace("dtype=torch.bfloat16", "dtype=torch.float32")  # the CPU here
    scope: dict = {}
    exec(code, scope)  # noqa: S102 - the card's documented snippet, as a user would run it
    plain, processor = scope["model"], scope["processor"]
    ours, _ = load_model(folder)
    from omnibench.data.manifest import read_manifest
    from omnibench.data.media import MediaStore

    clips = read_manifest(synthemo, split="cold_start")[:2]
    media = MediaStore(clips, ours.config.omnibench_decode).decode(clips)
    batch = build_inputs(processor, media, [ALL] * len(media))
    with torch.no_grad():  # ours runs the patch embedding as a matmul: the same weights, float rounding apart
        torch.testing.assert_close(plain(**batch).logits, ours(**batch).logits, rtol=1e-4, atol=1e-5)
