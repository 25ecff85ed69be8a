"""Saving and loading thinkers: the tiny model or a real Qwen2.5-Omni checkpoint from a local folder.

Supported ``config.json`` layouts (``model_type``):

* ``qwen2_5_omni_thinker`` — a thinker saved on its own (the tiny model, our SFT/GRPO checkpoints);
* ``qwen2_5_omni``        — the full Qwen2.5-Omni release (thinker + talker + token2wav, weights
  prefixed ``thinker.`` / ``talker.`` / ``token2wav.``): only the thinker is built and loaded, the
  talker and the vocoder are never instantiated and their weights are skipped;
* ``qwen3_omni_moe`` / ``qwen3_omni_moe_thinker`` — Qwen3-Omni, the same way (see
  :data:`ARCHITECTURES`).

A hub id (``Qwen/Qwen2.5-Omni-3B``) resolves only to a copy already in the local Hugging Face cache:
nothing is downloaded.

Device, dtype and attention are chosen the same way by every command that loads a model
(``base``, ``sft``, ``grpo``, ``eval``, ``attribute``): :func:`add_model_args` adds ``--device``,
``--dtype`` and ``--attn-implementation``; :func:`model_load_kwargs` turns them into
:func:`load_model` keywords. Defaults: CUDA when present, else the CPU; for inference the dtype
``auto`` is bfloat16 on a GPU that supports it, else float32; for training it is float32 (master
weights; bf16 enters as autocast, ``bf16: true``, the way transformers' Trainer and TRL do it) and
pure bf16 weights only when asked (``--dtype bfloat16``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import transformers

from omnibench.model.attention import batch_tower_attention
from omnibench.model.patch_embed import matmul_patch_embed

#: config model_type -> (thinker class, thinker config class, processor class, key of the thinker sub-config)
ARCHITECTURES: dict[str, tuple[str, str, str, str | None]] = {
    "qwen2_5_omni_thinker": (
        "Qwen2_5OmniThinkerForConditionalGeneration", "Qwen2_5OmniThinkerConfig", "Qwen2_5OmniProcessor", None),
    "qwen2_5_omni": (
        "Qwen2_5OmniThinkerForConditionalGeneration", "Qwen2_5OmniThinkerConfig", "Qwen2_5OmniProcessor",
        "thinker_config"),
    "qwen3_omni_moe_thinker": (
        "Qwen3OmniMoeThinkerForConditionalGeneration", "Qwen3OmniMoeThinkerConfig", "Qwen3OmniMoeProcessor", None),
    "qwen3_omni_moe": (
        "Qwen3OmniMoeThinkerForConditionalGeneration", "Qwen3OmniMoeThinkerConfig", "Qwen3OmniMoeProcessor",
        "thinker_config"),
}  # fmt: skip


class ModelLoadError(RuntimeError):
    """A checkpoint folder is missing, incomplete or holds an unsupported architecture."""


def save_model(model, processor, directory: str | os.PathLike, decode=None) -> Path:
    """Save model weights + config + generation config and the processor (tokenizer, chat template,
    feature extractor, image/video processors) into one folder that :func:`load_model` reads back.

    ``decode``: the decode settings the model was trained with (a DecodeConfig or a mapping of its
    fields), recorded as ``config.omnibench_decode`` next to ``omnibench_labels`` so that every
    consumer decodes its inputs the same way (:func:`omnibench.data.media.decode_config_for`); None
    keeps what the config already records."""
    if decode is not None:
        from omnibench.data.media import CONFIG_KEY, DecodeConfig

        setattr(model.config, CONFIG_KEY, DecodeConfig.coerce(decode).settings())
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


DTYPES = ("auto", "float32", "bfloat16", "float16")
ATTN_IMPLEMENTATIONS = ("sdpa", "eager", "flash_attention_2")


def default_device() -> str:
    """``"cuda"`` when a CUDA device is present, else ``"cpu"``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_device(device: str | torch.device | None) -> str:
    """``None`` / ``"auto"`` -> :func:`default_device`; a CUDA device asked for on a machine without one is
    an error that says so (not a crash deep inside the first forward pass)."""
    if device is None or str(device) == "auto":
        return default_device()
    device = str(device)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(f"--device {device}: no CUDA device is visible on this machine; use --device cpu")
    return device


def resolve_dtype(dtype: str | torch.dtype | None, device: str | None = None, training: bool = False) -> torch.dtype:
    """The weights' dtype. ``None`` / ``"auto"``: float32 for training (master weights, bf16 by autocast)
    and on the CPU; bfloat16 for inference on a GPU that supports it."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype is None or dtype == "auto":
        device = resolve_device(device)
        if not training and device.startswith("cuda") and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    return getattr(torch, dtype)


def add_model_args(parser, training: bool = False):
    """``--device``, ``--dtype``, ``--attn-implementation`` for a command that loads a model. With
    ``training`` the defaults are None (the recipe's keys decide; see :class:`omnibench.recipes.TrainRecipe`)."""
    default = None if training else "auto"
    parser.add_argument("--device", default=default,
                        help="cpu | cuda | cuda:N (default auto: CUDA when present, else the CPU)")
    parser.add_argument("--dtype", default=default, choices=DTYPES,
                        help="weights' dtype; auto: " + ("float32 master weights (bf16 mixed precision by autocast "
                                                         "on a GPU); bfloat16 = pure bf16 weights" if training else
                                                         "bfloat16 on a GPU with bf16, else float32"))
    parser.add_argument("--attn-implementation", dest="attn_implementation", default=None,
                        choices=ATTN_IMPLEMENTATIONS, help="attention kernels (default: transformers' choice, sdpa)")
    return parser


def model_load_kwargs(args, training: bool = False) -> dict:
    """:func:`load_model` keywords (device, dtype, attn_implementation) from :func:`add_model_args` flags
    (an ``argparse.Namespace`` or a mapping, e.g. a pipeline's parameters)."""
    get = args.get if isinstance(args, dict) else (lambda k, d=None: getattr(args, k, d))
    device = resolve_device(get("device"))
    return {"device": device, "dtype": resolve_dtype(get("dtype"), device, training=training),
            "attn_implementation": get("attn_implementation")}


def describe_load(model) -> str:
    """``device cuda:0, dtype bfloat16, attention sdpa`` for a loaded model (printed by the CLIs)."""
    p = next(model.parameters())
    attn = getattr(model.config, "_attn_implementation", None)
    return f"device {p.device}, dtype {str(p.dtype).replace('torch.', '')}, attention {attn}"


def _resolve_dir(path: str | os.PathLike) -> Path:
    p = Path(path).expanduser()
    if p.is_dir():
        return p
    text = str(path)
    cache_note = ""
    if not p.exists() and text.count("/") == 1 and not text.startswith((".", "/", "~")):
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

        try:  # a hub id that is already in the local Hugging Face cache
            return Path(snapshot_download(text, local_files_only=True))
        except (LocalEntryNotFoundError, HFValidationError, OSError) as e:
            cache_note = f" It is not in the local Hugging Face cache either ({type(e).__name__})."
    if p.exists():
        raise ModelLoadError(
            f"load_model: {p} is a file; expected a checkpoint folder holding config.json and weights"
        )
    raise ModelLoadError(
        f"load_model: {p} does not exist.{cache_note} Expected a local folder with config.json, *.safetensors and the "
        "processor files (a model saved by omnibench.model.save_model, or a Qwen2.5-Omni download such as "
        "`huggingface-cli download Qwen/Qwen2.5-Omni-3B --local-dir DIR`); nothing is downloaded at run time."
    )


def read_config(directory: Path) -> dict:
    """The folder's config.json as a dict (raises ModelLoadError naming what the folder holds)."""
    cfg_path = directory / "config.json"
    if not cfg_path.is_file():
        found = sorted(x.name for x in directory.iterdir())[:20]
        raise ModelLoadError(
            f"load_model: {directory} has no config.json (found: {found or 'an empty folder'}); expected a "
            "checkpoint folder with config.json, model weights (*.safetensors) and processor files"
        )
    try:
        return json.loads(cfg_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ModelLoadError(f"load_model: {cfg_path} is not valid JSON: {e}") from e


def load_model(
    path: str | os.PathLike,
    dtype: torch.dtype | str | None = None,
    device: str | torch.device | None = None,
    attn_implementation: str | None = None,
):
    """Load ``(thinker model, processor)`` from a local checkpoint folder (or a locally cached hub id).

    ``dtype``: e.g. ``torch.bfloat16`` or ``"auto"`` (the checkpoint's); None keeps transformers' default.
    ``device``: where the weights are placed (``"cuda"``, ``"cuda:1"``, ``"cpu"``); None = CPU.
    ``attn_implementation``: ``"sdpa"``, ``"flash_attention_2"``, ``"eager"``; None = transformers' choice
    (towers on ``sdpa`` then batch their chunks: :func:`omnibench.model.attention.batch_tower_attention`).
    The model is returned in eval mode.
    """
    directory = _resolve_dir(path)
    raw = read_config(directory)
    model_type = raw.get("model_type")
    if model_type not in ARCHITECTURES:
        raise ModelLoadError(
            f"load_model: {directory}/config.json has model_type={model_type!r} "
            f"(architectures={raw.get('architectures')}); supported: {sorted(ARCHITECTURES)} — a Qwen2.5-Omni "
            "(or Qwen3-Omni) checkpoint, full or thinker-only"
        )
    if not any(directory.glob("*.safetensors")) and not any(directory.glob("*.bin")):
        raise ModelLoadError(
            f"load_model: {directory} has config.json but no weights (*.safetensors or *.bin)"
        )
    model_cls_name, cfg_cls_name, proc_cls_name, sub_key = ARCHITECTURES[model_type]
    model_cls = getattr(transformers, model_cls_name)
    cfg_cls = getattr(transformers, cfg_cls_name)
    if sub_key is None:
        config = cfg_cls.from_pretrained(directory)
    else:
        if sub_key not in raw:
            raise ModelLoadError(
                f"load_model: {directory}/config.json (model_type {model_type!r}) lacks {sub_key!r}"
            )
        config = cfg_cls(**raw[sub_key])
    kwargs: dict = {"config": config, "local_files_only": True}
    if dtype is not None:
        kwargs["dtype"] = getattr(torch, dtype) if isinstance(dtype, str) and dtype != "auto" else dtype
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    if device is not None:
        kwargs["device_map"] = {"": str(device)}
    model = model_cls.from_pretrained(directory, **kwargs)
    batch_tower_attention(model)  # sdpa towers: one call per run of equal chunks (omnibench.model.attention)
    matmul_patch_embed(model)  # the vision patch embedding as one matrix product (omnibench.model.patch_embed)
    model.eval()
    processor = load_processor(directory, proc_cls_name)
    return model, processor


def load_processor(directory: str | os.PathLike, processor_class: str = "Qwen2_5OmniProcessor"):
    """The checkpoint's processor (tokenizer, chat template, feature extractor, image/video processors)."""
    directory = Path(directory)
    cls = getattr(transformers, processor_class)
    try:
        return cls.from_pretrained(directory, local_files_only=True)
    except Exception as e:
        found = sorted(x.name for x in directory.iterdir())[:30]
        raise ModelLoadError(
            f"load_model: cannot build {processor_class} from {directory} ({type(e).__name__}: {e}); expected "
            f"tokenizer files, preprocessor_config.json and a chat template next to the weights; found: {found}"
        ) from e
