"""Precision, devices and the guards against non-finite values, on the CPU.

- the training dtype: float32 master weights by default (transformers 5 would load a bf16
  checkpoint as bf16), pure bf16 only when asked, ``model_init_kwargs`` honoured;
- a bf16 SFT -> GRPO run of the tiny model (autocast on the CPU, ``use_cpu`` + ``bf16``; and pure
  bf16 weights) keeps finite losses, weights and sampled completions;
- the recorded GPU failure's mechanism: one non-finite gradient made every weight NaN through
  gradient clipping and AdamW, and sampling then crashed in ``torch.multinomial``. Now the step is
  skipped (``FiniteGradients``), and sampling that meets non-finite logits stops with an error
  naming the step and the cause;
- ``omnibench eval`` / ``omnibench attribute`` with ``--dtype bfloat16`` on the CPU.
"""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
from conftest import make_media

from omnibench.data.manifest import Clip
from omnibench.data.media import MediaStore
from omnibench.grpo import GRPORecipe, NonFiniteSamplingError
from omnibench.grpo import build_trainer as grpo_trainer
from omnibench.model.loading import load_model, model_load_kwargs, resolve_dtype, save_model
from omnibench.recipes import NonFiniteGradientError, load_policy, load_recipe
from omnibench.sft import SFTRecipe
from omnibench.sft import build_trainer as sft_trainer

pytestmark = pytest.mark.usefixtures("one_thread")
LABELS = ["happy", "sad", "angry", "fear"]


#: make_media's settings here: a dict of clips, each a tone of its own pitch, with no noise
MEDIA_KW = {"as_dict": True, "audio": "tone", "scale": 0.5}


def _clips(n: int, split: str = "train") -> list[Clip]:
    return [Clip(id=f"c{i}", video=f"c{i}.mp4", label=LABELS[i % 4], split=split) for i in range(n)]


def _finite(model) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def _sft(tmp_path, **kw) -> SFTRecipe:
    base = {"out": str(tmp_path / "sft"), "mode": "label_only", "max_steps": 4, "batch_size": 4,
            "learning_rate": 3e-3, "modality_dropout": 0.3, "progress": False, "threads": 1, "device": "cpu"}
    return load_recipe(SFTRecipe, {**base, **kw})


def _grpo(tmp_path, **kw) -> GRPORecipe:
    base = {"out": str(tmp_path / "grpo"), "max_steps": 2, "num_generations": 4, "per_device_train_batch_size": 8,
            "max_completion_length": 12, "learning_rate": 3e-4, "beta": 0.04, "temperature": 1.0,
            "modality_dropout": 0.3, "progress": False, "threads": 1, "device": "cpu"}
    return load_recipe(GRPORecipe, {**base, **kw})


# ------------------------------------------------------------------------------------ dtype choice


def test_training_loads_float32_master_weights_unless_pure_bf16_is_asked(tiny, tmp_path):
    model, processor = copy.deepcopy(tiny[0]).to(torch.bfloat16), tiny[1]
    save_model(model, processor, tmp_path / "bf16")  # a bf16 checkpoint, as the Qwen releases are
    assert load_model(tmp_path / "bf16", dtype="auto")[0].dtype == torch.bfloat16  # transformers' own "auto"
    recipe = {"model": str(tmp_path / "bf16"), "threads": None}
    assert load_policy(load_recipe(SFTRecipe, recipe))[0].dtype == torch.float32
    assert load_policy(load_recipe(SFTRecipe, {**recipe, "dtype": "bfloat16"}))[0].dtype == torch.bfloat16
    init = load_recipe(GRPORecipe, {**recipe, "model_init_kwargs": {"dtype": "bfloat16"}})
    assert load_policy(init)[0].dtype == torch.bfloat16, "GRPOConfig.model_init_kwargs is honoured"
    assert "model_init_kwargs" not in {k for k, v in vars(init.grpo_config()).items() if v}
    assert load_policy(load_recipe(SFTRecipe, {"model": "tiny", "dtype": "bfloat16", "threads": None}))[0].dtype \
        == torch.bfloat16


def test_inference_dtype_and_device_defaults():
    cuda = torch.cuda.is_available()
    assert model_load_kwargs({})["device"] == ("cuda" if cuda else "cpu")
    assert resolve_dtype("auto", "cpu") == torch.float32
    assert resolve_dtype("auto", "cpu", training=True) == torch.float32
    assert resolve_dtype("bfloat16", "cpu") == torch.bfloat16
    with pytest.raises(ValueError, match="dtype must be one of"):
        resolve_dtype("bf16", "cpu")
    if not cuda:
        from omnibench.model.loading import ModelLoadError

        with pytest.raises(ModelLoadError, match="no CUDA device"):
            model_load_kwargs({"device": "cuda"})


# ------------------------------------------------------------------------------------ bf16 runs


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["auto", "bfloat16"], ids=["bf16-autocast", "pure-bf16"])
def test_bf16_sft_then_grpo_keeps_losses_weights_and_samples_finite(tiny, tmp_path, dtype):
    """The recorded GPU run's recipe (SFT at the demo's learning rate, then GRPO with modality
    dropout) in bf16 on the CPU: mixed precision (float32 weights, bf16 autocast) and pure bf16."""
    model, processor = copy.deepcopy(tiny[0]), tiny[1]
    model = model.to(torch.bfloat16 if dtype == "bfloat16" else torch.float32)
    media = make_media(8, **MEDIA_KW)
    sft = _sft(tmp_path, bf16=True, dtype=dtype)
    trainer = sft_trainer(sft, model, processor, MediaStore.from_media(media), _clips(8, "cold_start"))
    assert trainer.args.bf16 and trainer.args.use_cpu and trainer.accelerator.mixed_precision == "bf16"
    trainer.train()
    sft_logs = [r for r in trainer.state.log_history if "loss" in r]
    assert len(sft_logs) == 4 and all(math.isfinite(r["loss"]) and math.isfinite(r["grad_norm"]) for r in sft_logs)
    assert _finite(trainer.model)
    assert next(trainer.model.parameters()).dtype == (torch.bfloat16 if dtype == "bfloat16" else torch.float32)

    grpo = grpo_trainer(_grpo(tmp_path, bf16=True, dtype=dtype), trainer.model, processor,
                        MediaStore.from_media(media), _clips(8))
    grpo.train()
    logs = [r for r in grpo.state.log_history if "loss" in r]
    assert len(logs) == 2 and all(math.isfinite(r["loss"]) and math.isfinite(r["grad_norm"]) for r in logs)
    assert all(r["completions/mean_length"] > 0 for r in logs), "completions were sampled"
    assert _finite(grpo.model)


# ------------------------------------------------------------------------------------ guards


class _PoisonGrad:
    """Makes the gradient of one parameter NaN in the given backward passes (1-based)."""

    def __init__(self, param, calls):
        self.calls, self.n = set(calls), 0
        self.handle = param.register_hook(self)

    def __call__(self, grad):
        self.n += 1
        return torch.full_like(grad, float("nan")) if self.n in self.calls else grad


def test_a_non_finite_gradient_step_is_skipped_not_applied(tiny, tmp_path):
    """Without the guard, clipping multiplies every gradient by NaN and AdamW makes every weight NaN:
    the recorded GPU failure (grad_norm nan in SFT step 4, then torch.multinomial's device assert)."""
    model, processor = copy.deepcopy(tiny[0]), tiny[1]
    media = make_media(8, **MEDIA_KW)
    trainer = sft_trainer(_sft(tmp_path, max_steps=3), model, processor, MediaStore.from_media(media),
                          _clips(8, "cold_start"))
    poison = _PoisonGrad(model.model.language_model.layers[0].mlp.up_proj.weight, calls={2})
    before = {}

    from transformers import TrainerCallback

    class Snapshot(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            before[state.global_step] = {n: p.detach().clone() for n, p in model.named_parameters()}

    trainer.add_callback(Snapshot())
    trainer.train()
    poison.handle.remove()
    logs = [r for r in trainer.state.log_history if "loss" in r]
    assert [math.isnan(r["grad_norm"]) for r in logs] == [False, True, False]
    assert _finite(model)
    after_step2 = before[2]
    assert all(torch.equal(before[1][n], after_step2[n]) for n in after_step2), "step 2 changed no weight"
    assert any(not torch.equal(after_step2[n], p) for n, p in model.named_parameters()), "step 3 trained"
    rows = [json.loads(line) for line in (tmp_path / "sft" / "metrics.jsonl").read_text().splitlines()]
    assert [r.get("nonfinite_grad_steps") for r in rows if "loss" in r] == [0, 1, 1]


def test_non_finite_gradients_in_a_row_stop_with_an_error_naming_the_step(tiny, tmp_path):
    model, processor = copy.deepcopy(tiny[0]), tiny[1]
    trainer = sft_trainer(_sft(tmp_path, max_steps=3, max_nonfinite_steps=0), model, processor,
                          MediaStore.from_media(make_media(8, **MEDIA_KW)), _clips(8, "cold_start"))
    _PoisonGrad(model.model.language_model.layers[0].mlp.up_proj.weight, calls={2})
    with pytest.raises(NonFiniteGradientError, match=r"optimizer step 2: the gradient is not finite .*learning rate"):
        trainer.train()


def test_sampling_from_non_finite_logits_names_the_step_and_the_cause(tiny, tmp_path):
    """Not a device assert inside torch.multinomial: an error naming the GRPO step and the NaN weights."""
    model, processor = copy.deepcopy(tiny[0]), tiny[1]
    with torch.no_grad():
        model.lm_head.weight[3, 0] = float("nan")
    trainer = grpo_trainer(_grpo(tmp_path, beta=0.0, max_steps=1), model, processor,
                           MediaStore.from_media(make_media(4, **MEDIA_KW)), _clips(4))
    with pytest.raises(NonFiniteSamplingError, match=r"GRPO step 0: next-token logits are not finite for (\d+) of \1 "
                                                     r"sequences.*1 parameter tensors .*lm_head.weight"):
        trainer.train()


# ------------------------------------------------------------------------------------ CLIs in bf16


@pytest.mark.parametrize("command", ["base", "sft", "grpo", "eval", "attribute"])
def test_every_model_command_has_device_dtype_and_attention_flags(command, capsys):
    from omnibench.cli import main

    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    for flag in ("--device", "--dtype", "--attn-implementation", "bfloat16", "flash_attention_2"):
        assert flag in text, f"omnibench {command} --help lacks {flag}"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from omnibench.data.synth import generate
    from omnibench.tiny import build_tiny

    root = tmp_path_factory.mktemp("bf16cli")
    manifest = generate(root / "data", n_train=8, n_cold_start=0, n_test=2, seed=0, workers=1)
    model, processor = build_tiny(seed=0)
    folder = save_model(model, processor, root / "runs" / "x" / "checkpoints" / "sft" / "model")
    return manifest, folder


@pytest.mark.slow
def test_eval_and_attribute_run_in_bf16_on_the_cpu(checkpoint, tmp_path, capsys):
    from omnibench.cli import main

    manifest, folder = checkpoint
    common = ["--model", str(folder), "--manifest", str(manifest), "--split", "test_id", "--limit", "2",
              "--device", "cpu", "--dtype", "bfloat16", "--out", str(tmp_path), "--max-new-tokens", "6"]
    assert main(["eval", *common, "--n-boot", "10", "--batch-size", "2"]) == 0
    out = capsys.readouterr().out
    assert "model: device cpu, dtype bfloat16" in out
    preds = [json.loads(line) for line in next((tmp_path / "predictions").glob("*.jsonl")).read_text().splitlines()]
    assert len(preds) == 2
    assert main(["attribute", *common, "--no-generate", "--batch-size", "2"]) == 0
    out = capsys.readouterr().out
    assert "model: device cpu, dtype bfloat16" in out
    rows = [json.loads(line) for line in (tmp_path / "attribution.jsonl").read_text().splitlines()]
    assert len(rows) == 2, rows
    values = [v for r in rows for v in (*r["values"].values(), *r["phi"].values())]
    assert len(values) == 12 and all(math.isfinite(v) for v in values)


@pytest.mark.slow
def test_base_pretrains_with_device_and_dtype_flags(checkpoint, tmp_path, capsys):
    from omnibench.cli import main

    manifest, _ = checkpoint
    out = tmp_path / "base"
    assert main(["base", "--manifest", str(manifest), "--out", str(out), "--steps", "2", "--describe-steps", "2",
                 "--batch-size", "4", "--describe-batch-size", "4", "--eval-every", "1", "--no-progress",
                 "--device", "cpu", "--dtype", "bfloat16"]) == 0
    assert "model: device cpu, dtype bfloat16" in capsys.readouterr().out
    model, _ = load_model(out, dtype="auto")
    assert model.dtype == torch.bfloat16 and _finite(model)
