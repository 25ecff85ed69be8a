"""Running a model over clips: batched greedy generation (or label scoring), answers resolved, scored.

:func:`evaluate_split` is what the notebooks, the CLI, studies and benchmarks call. Each split is scored
against its own dataset's label set (:func:`eval_labels`: DFEW 7, MAFW 11, RAVDESS 8, from the data
cards), not the model's: a RAVDESS *calm* clip that a DFEW-trained model cannot answer counts as wrong,
and a MAFW *contempt* answer to a *contempt* clip counts as right.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from omnibench.answers import resolve
from omnibench.data.media import MediaStore
from omnibench.evaluate.metrics import metrics
from omnibench.evaluate.result import EvalResult
from omnibench.labels import DFEW7, label_set, labels_for


def model_labels(model, dataset: str | None = None) -> tuple[str, ...]:
    """The labels ``model`` answers in: ``dataset``'s card when given, else the labels the model was
    trained on (``config.omnibench_labels``), else the DFEW seven."""
    if dataset:
        return label_set(dataset)
    cfg_labels = getattr(getattr(model, "config", None), "omnibench_labels", None)
    return tuple(cfg_labels) if cfg_labels else DFEW7


#: The label set a split is scored against (:func:`omnibench.labels.labels_for`).
eval_labels = labels_for


@dataclass
class EvalConfig:
    """How :func:`evaluate_split` runs a model."""

    modalities: str = field(default="video,audio", metadata={"help": "modalities given to the model: video,audio | video | audio | none"})
    mode: str = field(default="generate", metadata={"help": "generate (greedy, answer parsed) | score (argmax of label scores; fast, no reasoning)"})
    batch_size: int = field(default=8, metadata={"help": "clips per forward/generate call"})
    max_new_tokens: int = field(default=64, metadata={"help": "generation budget (reasoning + answer)"})
    n_boot: int = field(default=1000, metadata={"help": "bootstrap resamples for the CIs"})
    seed: int = field(default=0, metadata={"help": "bootstrap seed"})
    prompt: str | None = field(default=None, metadata={"help": "prompt text (None = the model layer's DEFAULT_PROMPT)"})

    def __post_init__(self):
        if self.mode not in ("generate", "score"):
            raise ValueError(f"EvalConfig.mode must be 'generate' or 'score', got {self.mode!r}")


def evaluate_split(
    model,
    processor,
    clips,
    media=None,
    labels: Sequence[str] = DFEW7,
    config: EvalConfig | None = None,
    checkpoint: str = "",
    split: str | None = None,
    decode_config=None,
    cache=None,
    progress: bool = False,
) -> EvalResult:
    """Predict every clip and compute the metrics.

    Args:
        clips: :class:`omnibench.data.manifest.Clip` records (gold = ``clip.label``).
        media: their decoded :class:`Media` (decoded here with ``decode_config``/``cache`` if None).
        labels: the label set the split is scored against (its dataset's: :func:`omnibench.labels.labels_for`).
        config: :class:`EvalConfig` (modalities, generate|score mode, batch size, bootstrap).
        checkpoint / split: names stored with the predictions (split defaults to the clips' split).
    """
    from omnibench.model import generate, score_labels
    from omnibench.model.inputs import DEFAULT_PROMPT, parse_modalities

    cfg = config or EvalConfig()
    labels = tuple(labels)
    clips = list(clips)
    store = MediaStore(clips, decode_config, cache) if media is None else MediaStore.from_media(list(media))
    media = store.decode(clips, progress=progress)  # same order as clips; a clip without media is an error
    mods = parse_modalities(cfg.modalities)
    prompt = cfg.prompt if cfg.prompt is not None else DEFAULT_PROMPT
    t0 = time.perf_counter()
    if cfg.mode == "generate":
        completions = generate(
            model, processor, media, mods, prompt=prompt, max_new_tokens=cfg.max_new_tokens,
            do_sample=False, batch_size=cfg.batch_size, progress=progress,
        )
        resolved = [resolve(c, labels) for c in completions]
    else:
        scores = score_labels(model, processor, media, mods, labels, prompt=prompt, batch_size=cfg.batch_size)
        best = np.asarray(scores).argmax(axis=1)
        resolved = [(labels[i], "ok") for i in best]
        completions = [f"<answer>{labels[i]}</answer>" for i in best]
    seconds = time.perf_counter() - t0
    gold = [c.label for c in clips]
    res = EvalResult(
        ids=[c.id for c in clips],
        gold=gold,
        prediction=[p for p, _ in resolved],
        completion=list(completions),
        status=[s for _, s in resolved],
        labels=labels,
        modalities=",".join(m for m in ("video", "audio") if m in mods) or "none",
        checkpoint=checkpoint,
        split=split if split is not None else (clips[0].split if clips else ""),
        mode=cfg.mode,
        seconds=seconds,
    )
    res.metrics = metrics(gold, res.prediction, labels, n_boot=cfg.n_boot, seed=cfg.seed, status=res.status)
    return res


