"""GRPO with verifiable rewards on video + audio: a thin extension of ``trl.GRPOTrainer``.

TRL 1.16's GRPOTrainer builds multimodal inputs for *images* only: video and audio fields never
reach generation or the log-probability passes. :class:`OmniGRPOTrainer` fixes that with five
small overrides (besides its ``__init__``) and otherwise leaves TRL's algorithm (sampling, group
advantages, loss types, reward scaling, clipping, KL, logging, checkpointing) untouched:

``get_train_dataloader()``
    with ``dataloader_num_workers > 0`` (the recipe's ``media_workers``, 1 by default), TRL's
    dataloader's worker processes decode each batch's distinct clips (:class:`DecodedMedia`, the
    trainer's media store in each worker) while the current step trains, so a first epoch's cold
    decoding leaves the training step's critical path.
``_generate_and_score_completions(inputs)``
    takes each distinct clip's media from the batch (decoded by a worker) or, without workers,
    decodes it once (:class:`~omnibench.data.media.MediaStore`, in memory over the disk cache), applies modality dropout per clip (the same for all G
    completions of a group, seeded by clip and step so every process agrees), runs the processor
    once for the distinct clips (``omnibench.model.build_inputs``) and splits the result into
    per-row media tensors that share storage across a group. It then calls TRL's method and
    attaches those per-row media to the batch (key ``omni_media``, a list that TRL shuffles and
    splits with the other per-row fields).
``_tokenize_prompts(prompts)``
    hands TRL the prompt ids built above (with the video/audio placeholder tokens) and the
    collated video/audio tensors, which TRL forwards to ``model.generate``.
``_get_per_token_logps_and_entropies(model, input_ids, ...)``
    the log-prob pass used for the loss, the old-policy and the reference log-probs: TRL's chunked
    fused-LM-head loop, with each chunk's rows' video and audio tensors passed to the model.
``_compute_loss(model, inputs)``
    makes the batch's ``omni_media`` the media of the loss pass, then runs TRL's loss.

And in ``__init__``: the policy's (and reference's) encoders are shared across the rows of a
batch that repeat a clip (``omnibench.model.encoders.share_encoders``), so generation's prefill and
each log-prob pass encode a clip once, not G times. The trainer says which rows are which clip
(``clip_identity``: each row's media carry its clip id as ``clip_key``), so no pass compares
tensors to find out, and a pass's video patches hold each distinct clip once (``distinct_video``);
with frozen towers (LoRA, ``freeze_vision`` / ``freeze_audio``) their outputs are kept for the
generation batch (``EncoderCache``) and reused by generation, the reference and the loss passes:
one encoder pass per clip per step. With ``beta > 0`` and a model given as an object, the
reference model is a frozen copy of the policy that holds the policy's frozen modules by reference
(``reference_copy``; TRL would rebuild it from ``config._name_or_path``, which an in-memory
model does not have); tokens that would add media placeholders (video/audio/image pads and their
begin/end markers) are suppressed during sampling, since a sampled one would break the next
forward pass. vLLM and tool calling are not supported (both bypass these hooks) and are refused.

``tests/test_grpo.py::test_overridden_trl_methods_keep_their_signatures`` pins the TRL methods and
parameters these overrides rely on, so a TRL upgrade that moves them fails loudly.

Running: :func:`run_grpo` (notebooks) or ``omnibench grpo --config FILE`` (:func:`cli_grpo`),
optionally under ``accelerate launch --config_file configs/accelerate/<ddp|zero2|zero3>.yaml``.
The run folder holds ``checkpoints/checkpoint-N`` (Trainer), ``model/`` (final weights +
processor), ``recipe.yaml`` and ``metrics.jsonl`` (one line per step: each reward's mean and
std, ``accuracy``, ``format_rate``, ``completion_length``, ``kl`` when ``beta > 0``, ``loss``,
``learning_rate``, plus everything else TRL logs).
"""

from __future__ import annotations

import argparse
import contextlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import trl.trainer.grpo_trainer as _trl_grpo
from trl import GRPOConfig, GRPOTrainer

from omnibench.model.inputs import AUDIO_KEYS, VIDEO_KEYS, collate_media, split_media_rows
from omnibench.model.parts import thinker
from omnibench.model.positions import batch_position_ids, rope_module
from omnibench.recipes import (
    FiniteGradients,
    MetricsJSONL,
    TrainRecipe,
    common_args,
    droppable_modalities,
    load_clips,
    load_policy,
    lora_config,
    modality_dropout,
    recipe_media_store,
    run_recipe,
    set_trainable,
    stable_seed,
)
from omnibench.rewards import resolve_rewards

#: friendly metric names written next to TRL's own keys in metrics.jsonl
METRIC_ALIASES = {
    "accuracy": "rewards/accuracy_reward/mean",
    "format_rate": "rewards/format_reward/mean",
    "completion_length": "completions/mean_length",
}


@dataclass
class _Row:
    prompt_ids: list[int]
    media: dict  # model keyword arguments of the row's media, plus "clip_key" (its clip id)
    modalities: frozenset


@contextlib.contextmanager
def _reference_model(ref_model):
    """Within the block, TRL's ``create_model_from_path`` (which builds GRPO's reference model from
    the policy's hub name) returns ``ref_model`` instead."""
    original = _trl_grpo.create_model_from_path
    _trl_grpo.create_model_from_path = lambda *args, **kwargs: ref_model
    try:
        yield
    finally:
        _trl_grpo.create_model_from_path = original


#: the batch column the dataloader's workers fill with each row's decoded media (:class:`DecodedMedia`)
DECODED = "omni_decoded"


class DecodedMedia:
    """A ``datasets`` transform that adds each row's decoded media (column :data:`DECODED`).

    Applied by :meth:`OmniGRPOTrainer.get_train_dataloader` when the dataloader has worker processes:
    the workers then decode the next batches' clips while the training process runs the current
    step. A batch's distinct clips are decoded once (its G rows hold the same object, which the
    worker sends once); ``store`` is the trainer's media store, each worker using its own copy for
    an epoch (the disk cache is shared). A clip
    that cannot be decoded raises here, in the worker, and the dataloader re-raises it in training."""

    def __init__(self, store: Callable[[str], Any]):
        self.store = store

    def __call__(self, batch: dict) -> dict:
        ids = batch["clip_id"]
        media = {cid: self.store(cid) for cid in dict.fromkeys(ids)}
        return {**batch, DECODED: [media[cid] for cid in ids]}


# ------------------------------------------------------------------------------------ trainer


class NonFiniteSamplingError(RuntimeError):
    """GRPO generation met next-token logits that are not finite (the message names the step and cause)."""



class OmniGRPOTrainer(GRPOTrainer):
    """``trl.GRPOTrainer`` whose generation and log-prob passes see each clip's video and audio.

    Args beyond GRPOTrainer's:
        media_store: callable ``clip_id -> Media`` (e.g. :class:`~omnibench.data.media.MediaStore`).
            The train dataset needs a ``clip_id`` column and a conversational ``prompt`` column
            (reward functions see prompts and completions in TRL's conversational form);
            other columns (``label``, ...) reach the reward functions as keyword arguments.
        prompt: the user prompt text given to the model (default: R1-Omni's).
        modality_dropout: probability that a clip (all G completions of its group) is shown
            without its video or without its audio block in a training step.
        droppable: clip id -> the modalities dropout may remove from it (default: both; see
            :func:`omnibench.recipes.droppable_modalities`).
        ref_model: reference model for ``beta > 0`` (default: a frozen copy of ``model``).
        share_encoders: encode each distinct clip once per forward pass, although its G rows
            repeat it (``omnibench.model.encoders.share_encoders``; same gradients).
        reuse_frozen_encoders: a frozen tower encodes each clip once per step and its output is
            reused by all passes of the step (``omnibench.model.encoders.EncoderCache``).
        share_prefill: generation prefills each clip's prompt once and repeats its cache to the
            G rows (``omnibench.model.generation.shared_prefill``; greedy outputs identical).

    Attributes ``identify_clips`` (rows name their clip: no tensor comparison, video patches once
    per clip), ``reuse_frozen_encoders``, ``share_prefill`` and ``share_positions`` (position ids
    once per clip) may be switched off after
    construction (benchmarks do).
    """

    def __init__(
        self,
        model,
        reward_funcs,
        args: GRPOConfig,
        train_dataset=None,
        *,
        media_store: Callable[[str], Any],
        prompt: str | None = None,
        modality_dropout: float = 0.0,
        droppable: dict | None = None,
        ref_model=None,
        share_encoders: bool = True,
        reuse_frozen_encoders: bool = True,
        share_prefill: bool = True,
        peft_config=None,
        processing_class=None,
        **kwargs,
    ):
        from omnibench.model.inputs import DEFAULT_PROMPT

        if args.use_vllm or kwargs.get("tools") or kwargs.get("rollout_func") or kwargs.get("environment_factory"):
            raise ValueError("OmniGRPOTrainer supports transformers generation only (no vLLM, tools or rollout_func)")
        if not 0.0 <= modality_dropout <= 1.0:
            raise ValueError(f"modality_dropout must be in [0, 1], got {modality_dropout}")
        self.media_store = media_store
        self.prompt = prompt or DEFAULT_PROMPT
        self.modality_dropout = float(modality_dropout)
        self.droppable = droppable or {}  # clip id -> modalities dropout may remove (default: both)
        self._pending_rows: list[_Row] | None = None
        self._active_media: list[dict] | None = None
        self.identify_clips = True
        self.reuse_frozen_encoders = bool(reuse_frozen_encoders)
        self.share_prefill = bool(share_prefill)
        self._encoder_cache = None  # EncoderCache of the current generation batch
        self.share_positions = True  # M-RoPE position ids once per clip (omnibench.model.positions)
        self._position_cache: dict = {}  # each clip's prompt positions, for the current generation batch
        args.remove_unused_columns = False  # the clip_id column must reach _generate_and_score_completions

        ctx = contextlib.nullcontext()
        if args.beta != 0.0 and peft_config is None and not isinstance(model, str) and not hasattr(model, "peft_config"):
            from omnibench.model.encoders import reference_copy

            ref = ref_model if ref_model is not None else reference_copy(model)
            ref.requires_grad_(False)
            ctx = _reference_model(ref)
        with ctx:
            super().__init__(
                model=model, reward_funcs=reward_funcs, args=args, train_dataset=train_dataset,
                processing_class=processing_class, peft_config=peft_config, **kwargs,
            )
        self._suppress_media_tokens()
        if share_encoders:
            self._share_encoders()

    # -------------------------------------------------------------- helpers

    def _suppress_media_tokens(self) -> None:
        """Never sample a token that would add (or open/close) a media block in the completion."""
        base = self.accelerator.unwrap_model(self.model)
        config = (thinker(base) or base).config  # the thinker's config holds the media token ids
        ids = {getattr(config, name, None) for name in (
            "image_token_id", "video_token_id", "audio_token_id", "vision_start_token_id",
            "vision_end_token_id", "audio_start_token_id", "audio_end_token_id")}
        tok = self._tokenizer
        for text in ("<|IMAGE|>", "<|VIDEO|>", "<|AUDIO|>", "<|vision_bos|>", "<|vision_eos|>",
                     "<|audio_bos|>", "<|audio_eos|>", "<|image_pad|>", "<|video_pad|>"):
            tid = tok.convert_tokens_to_ids(text)
            if isinstance(tid, int) and tid != tok.unk_token_id:
                ids.add(tid)
        ids = sorted(i for i in ids if isinstance(i, int) and i >= 0)
        suppress = sorted(set(self.generation_kwargs.get("suppress_tokens") or []) | set(ids))
        self.generation_kwargs["suppress_tokens"] = suppress
        self.generation_config.suppress_tokens = suppress

    def _share_encoders(self) -> bool:
        """Let the policy and reference encoders run once per distinct clip (when the model class allows)."""
        from omnibench.model.encoders import share_encoders

        done = False
        for model in (self.model, self.ref_model):
            if model is not None:
                done = bool(share_encoders(self.accelerator.unwrap_model(model))) or done
        return done

    def _check_sampling_logits(self, module, args, output) -> None:
        """Forward hook during generation: next-token logits that are not finite stop the run with
        :class:`NonFiniteSamplingError` (naming the step and the likely cause) before sampling turns
        them into a device-side assert in ``torch.multinomial``."""
        logits = getattr(output, "logits", None)
        if logits is None or torch.is_grad_enabled() or bool(torch.isfinite(logits[:, -1]).all()):
            return
        rows = int((~torch.isfinite(logits[:, -1]).all(-1)).sum())
        bad = [n for n, p in module.named_parameters() if not torch.isfinite(p).all()]
        cause = (f"{len(bad)} parameter tensors of the policy hold NaN/inf (e.g. {bad[:3]}): an earlier optimizer "
                 "step applied a non-finite gradient (see grad_norm in metrics.jsonl)" if bad else
                 "the weights are finite, so the forward pass overflowed: pure bf16/fp16 weights (train with dtype: "
                 "auto = float32 master weights and bf16: true) or a non-finite input feature")
        raise NonFiniteSamplingError(
            f"GRPO step {self.state.global_step}: next-token logits are not finite for {rows} of "
            f"{logits.shape[0]} sequences, so the completions cannot be sampled. Likely cause: {cause}.")

    def _compact(self, model) -> bool:
        """Whether ``model``'s passes take each distinct clip's video patches once (rows named)."""
        from omnibench.model.encoders import encoders_are_shared

        return self.identify_clips and encoders_are_shared(self.accelerator.unwrap_model(model))

    def _clips_known(self, model, media: Sequence[dict]):
        """The block's forward passes of ``model`` know which clip each of ``media``'s rows is (and take
        video patches collated with ``distinct_video=self._compact(model)``)."""
        if not self.identify_clips:
            return contextlib.nullcontext()
        from omnibench.model.encoders import clip_identity, row_keys

        video, audio = row_keys(media)
        cache = self._encoder_cache if self.reuse_frozen_encoders else None
        compact = self._compact(model) and video is not None
        return clip_identity(self.accelerator.unwrap_model(model), video, audio, cache, compact_video=compact)

    def _prefill_once(self, rows: Sequence[_Row]):
        """Within the block, generation prefills each distinct clip's prompt once (rows named)."""
        if not (self.share_prefill and self.identify_clips):
            return contextlib.nullcontext()
        from omnibench.model.generation import shared_prefill

        keys = [r.media.get("clip_key") for r in rows]
        distinct = list(dict.fromkeys(keys))
        if None in distinct or len(distinct) == len(keys):
            return contextlib.nullcontext()
        index = {k: j for j, k in enumerate(distinct)}
        media = [rows[keys.index(k)].media for k in distinct]
        fields = collate_media(media, dtype=self._media_dtype(), distinct_video=self._compact(self.model))
        return shared_prefill(self.accelerator.unwrap_model(self.model), [index[k] for k in keys], fields,
                              media_keys=(*VIDEO_KEYS, *AUDIO_KEYS),
                              prefill_context=lambda: self._clips_known(self.model, media))

    def _media_dtype(self):
        for p in self.accelerator.unwrap_model(self.model).parameters():
            if p.is_floating_point():
                return p.dtype
        return None

    def encode_clips(self, clip_ids: Sequence[str], train: bool, decoded: dict | None = None) -> list[_Row]:
        """Per-row prompt ids and media tensors; each distinct clip is decoded and processed once
        (``decoded``: clip id -> media already decoded, by the dataloader's workers).

        With ``train`` and ``modality_dropout > 0``, a clip may lose its video or audio block; the
        choice depends only on (seed, step, clip id), so all completions of a group and all
        processes see the same input.
        """
        from omnibench.model.inputs import build_inputs

        distinct = list(dict.fromkeys(clip_ids))
        media, mods = [], []
        for cid in distinct:
            m = decoded[cid] if decoded and cid in decoded else self.media_store(cid)
            rng = random.Random(stable_seed(self.args.seed, self.state.global_step, cid))
            m, keep = modality_dropout(m, self.modality_dropout if train else 0.0, rng, self.droppable.get(cid))
            media.append(m)
            mods.append(keep)
        batch = build_inputs(self.processing_class, media, mods, prompt=self.prompt)
        per_clip = {cid: _Row(ids, {**tensors, "clip_key": cid}, keep) for cid, (ids, tensors), keep in
                    zip(distinct, split_media_rows(batch, mods), mods)}
        return [per_clip[cid] for cid in clip_ids]

    # -------------------------------------------------------------- overrides of TRL

    def get_train_dataloader(self):
        """TRL's dataloader; with worker processes, they also decode each batch's clips (:class:`DecodedMedia`)."""
        dataset = self.train_dataset
        if self.args.dataloader_num_workers > 0 and hasattr(dataset, "with_transform") and "clip_id" in getattr(
                dataset, "column_names", ()):
            self.train_dataset = dataset.with_transform(DecodedMedia(self.media_store))
        try:
            return super().get_train_dataloader()
        finally:
            self.train_dataset = dataset

    def _generate_and_score_completions(self, inputs):
        if "clip_id" not in inputs[0]:
            raise KeyError("OmniGRPOTrainer's train dataset needs a 'clip_id' column naming each row's clip")
        decoded = {x["clip_id"]: x[DECODED] for x in inputs if DECODED in x}
        inputs = [{k: v for k, v in x.items() if k != DECODED} for x in inputs]  # not a reward kwarg
        rows = self.encode_clips([x["clip_id"] for x in inputs], train=self.model.training, decoded=decoded)
        inputs = [{**x, "modalities": ",".join(sorted(r.modalities))} for x, r in zip(inputs, rows)]
        self._pending_rows, self._active_media = rows, [r.media for r in rows]
        from omnibench.model.encoders import EncoderCache

        self._encoder_cache = EncoderCache()  # frozen towers' outputs, for this generation batch
        self._position_cache = {}
        guard = self.accelerator.unwrap_model(self.model).register_forward_hook(self._check_sampling_logits)
        try:
            with self._clips_known(self.model, self._active_media), self._prefill_once(rows):
                output = super()._generate_and_score_completions(inputs)
        finally:
            guard.remove()
            self._pending_rows = self._active_media = None
        output["omni_media"] = [r.media for r in rows]
        return output

    def _tokenize_prompts(self, prompts: list):
        rows = self._pending_rows
        if rows is None or len(rows) != len(prompts):
            raise RuntimeError("OmniGRPOTrainer._tokenize_prompts called outside a generation step")
        fields = collate_media([r.media for r in rows], dtype=self._media_dtype(),
                               distinct_video=self._compact(self.model))
        return [r.prompt_ids for r in rows], None, fields

    def _compute_loss(self, model, inputs):
        self._active_media = inputs.get("omni_media")
        try:
            return super()._compute_loss(model, inputs)
        finally:
            self._active_media = None

    def _get_per_token_logps_and_entropies(
        self, model, input_ids, attention_mask, logits_to_keep, batch_size=None,
        compute_entropy=False, compute_aux_loss=False, **image_fields,
    ):
        media = self._active_media
        if media is None:  # a text-only batch: TRL's own pass
            return super()._get_per_token_logps_and_entropies(
                model, input_ids, attention_mask, logits_to_keep, batch_size=batch_size,
                compute_entropy=compute_entropy, compute_aux_loss=compute_aux_loss, **image_fields)
        if len(media) != input_ids.size(0):
            raise RuntimeError(f"{len(media)} media rows for a batch of {input_ids.size(0)} sequences")
        batch_size = batch_size or input_ids.size(0)
        dtype = self._media_dtype()
        logps, entropies, aux = [], [], []
        for start in range(0, input_ids.size(0), batch_size):
            end = min(start + batch_size, input_ids.size(0))
            ids, mask = input_ids[start:end], attention_mask[start:end]
            labels = ids.masked_fill(mask == 0, -100)  # score only the completion tokens
            labels[:, :-logits_to_keep] = -100
            extra = collate_media(media[start:end], device=ids.device, dtype=dtype,
                                  distinct_video=self._compact(model))
            if compute_aux_loss:
                extra["output_router_logits"] = True
            rope = rope_module(model) if self.share_positions and self.identify_clips else None
            if rope is not None:
                extra["position_ids"] = batch_position_ids(rope, ids, mask, media[start:end], ids.size(1) - logits_to_keep,
                                                           cache=self._position_cache)
            with self._clips_known(model, media[start:end]), self.accelerator.autocast():
                out = model(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True, **extra)
            logps.append(out.log_probs[:, -logits_to_keep:])
            if compute_entropy:
                entropies.append(out.entropy[:, -logits_to_keep:])
            if compute_aux_loss:
                aux.append(out.aux_loss)
        return (
            torch.cat(logps),
            torch.cat(entropies) if compute_entropy else None,
            torch.stack(aux).mean() if compute_aux_loss else None,
        )

    # -------------------------------------------------------------- analysis

    @torch.no_grad()
    def completion_logps(self, clip_ids: Sequence[str], completions: Sequence[str]) -> list[torch.Tensor]:
        """Per-token log-probs of fixed ``completions`` given each clip, through the same media path
        and log-prob pass the loss uses (no modality dropout). One 1-D tensor per completion."""
        rows = self.encode_clips(list(clip_ids), train=False)
        tok = self._tokenizer
        comp = [tok(c, add_special_tokens=False)["input_ids"] for c in completions]
        device = self.accelerator.device
        width_p, width_c = max(len(r.prompt_ids) for r in rows), max(len(c) for c in comp)
        pad = tok.pad_token_id
        ids = torch.full((len(rows), width_p + width_c), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, (r, c) in enumerate(zip(rows, comp)):
            ids[i, width_p - len(r.prompt_ids) : width_p] = torch.tensor(r.prompt_ids)
            ids[i, width_p : width_p + len(c)] = torch.tensor(c)
            mask[i, width_p - len(r.prompt_ids) : width_p + len(c)] = 1
        self._active_media, cache, positions = [r.media for r in rows], self._encoder_cache, self._position_cache
        self._encoder_cache, self._position_cache = None, None  # a fresh pass: nothing reused from a training step
        try:
            logps, _, _ = self._get_per_token_logps_and_entropies(
                self.model, ids.to(device), mask.to(device), width_c)
        finally:
            self._active_media, self._encoder_cache, self._position_cache = None, cache, positions
        return [logps[i, : len(c)].cpu() for i, c in enumerate(comp)]


# ------------------------------------------------------------------------------------ recipe + run


@dataclass
class GRPORecipe(TrainRecipe):
    """A GRPO run. Keys that are ``trl.GRPOConfig`` fields (``loss_type``, ``scale_rewards``,
    ``epsilon``, ``num_iterations``, ...) may be given at the top level; they go to ``trainer``."""

    split: str = field(default="train", metadata={"help": "manifest split (label-only clips)"})
    rewards: dict = field(
        default_factory=lambda: {"accuracy": 1.0, "format": 1.0},
        metadata={"help": "reward name (or 'module:function') -> weight"},
    )
    reward_options: dict = field(
        default_factory=dict,
        metadata={"help": "reward name -> keyword arguments bound to it, e.g. {grounding: {lexicon: {video: [...], "
                          "audio: [...]}}}"},
    )
    num_generations: int = field(default=4, metadata={"help": "completions per clip (G)"})
    per_device_train_batch_size: int = field(
        default=8, metadata={"help": "completions per device per micro-step (a multiple of G keeps groups whole)"})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "micro-steps per optimizer step"})
    max_completion_length: int = field(default=48, metadata={"help": "tokens generated per completion"})
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature"})
    beta: float = field(default=0.04, metadata={"help": "KL coefficient (R1-Omni/open-r1: 0.04; 0 = no reference)"})
    resume: bool | str = field(default=False, metadata={"help": "true = last checkpoint in out/checkpoints; or a path"})
    media_workers: int = field(
        default=1, metadata={"help": "dataloader worker processes that decode the next steps' clips while a step "
                                     "trains (dataloader_num_workers; 0 = decode in the training process)"})

    @staticmethod
    def trainer_args_class():
        return GRPOConfig

    def validate(self) -> None:
        import os

        # TRL's rule: the generation batch of all processes holds whole groups (a group may span
        # processes; every process then applies the same modality dropout to its clip, see encode_clips)
        processes = int(os.environ.get("WORLD_SIZE", "1"))
        steps = (self.trainer or {}).get("steps_per_generation") or self.gradient_accumulation_steps
        if (self.per_device_train_batch_size * processes * steps) % self.num_generations:
            raise ValueError(
                f"per_device_train_batch_size ({self.per_device_train_batch_size}) x processes ({processes}) x "
                f"steps_per_generation ({steps}) must be a multiple of num_generations ({self.num_generations}) "
                "so each generation batch holds whole groups"
            )
        resolve_rewards(self.rewards, self.reward_options)

    def grpo_config(self) -> GRPOConfig:
        keys = ("num_generations", "per_device_train_batch_size", "gradient_accumulation_steps",
                "max_completion_length", "temperature", "beta")
        args = {key: getattr(self, key) for key in keys}
        args["reward_weights"] = resolve_rewards(self.rewards)[1]
        if self.media_workers < 0:
            raise ValueError(f"media_workers must be >= 0, got {self.media_workers}")
        args.update(common_args(self))  # the recipe's `trainer` entries win
        mine = self.trainer or {}
        if "dataloader_num_workers" not in mine:
            args["dataloader_num_workers"] = self.media_workers
        # not persistent: a persistent worker's iterator is reset, not rebuilt, at each epoch, which skips
        # the draw from torch's global RNG that a new iterator makes (with or without workers), so sampling
        # after the first epoch would differ from media_workers: 0. A new worker per epoch re-reads its clips
        # from the decode cache (about 0.5 ms a clip).
        args.setdefault("dataloader_persistent_workers", False)
        return GRPOConfig(**args)


def _dataset(clips, prompt: str, model_labels=None):
    """One row per clip; ``label_set`` is the label set the accuracy reward resolves the clip's answers
    against, the one evaluation scores it with (:func:`omnibench.labels.labels_for`): its dataset's card
    (MAFW 11, DFEW 7), else the model's labels (``model_labels``)."""
    from datasets import Dataset

    from omnibench.labels import labels_for

    return Dataset.from_list([
        {
            "prompt": [{"role": "user", "content": prompt}],
            "clip_id": c.id,
            "label": c.label,
            "label_set": list(labels_for([c], default=model_labels)),
            "condition": str(c.meta.get("condition", "")),
        }
        for c in clips
    ])


def build_trainer(recipe: GRPORecipe, model=None, processor=None, media_store=None, clips=None,
                  callbacks=()) -> OmniGRPOTrainer:
    """The trainer a recipe describes (model, clips and media may be given to skip loading them)."""
    from omnibench.model.inputs import DEFAULT_PROMPT

    if model is None:
        model, processor = load_policy(recipe)
    clips = clips if clips is not None else load_clips(recipe)
    store = media_store or recipe_media_store(recipe, clips, model)
    peft = lora_config(recipe.lora)
    if peft is None:
        set_trainable(model, recipe.freeze_vision, recipe.freeze_audio)
    prompt = recipe.prompt or DEFAULT_PROMPT
    reward_funcs, _ = resolve_rewards(recipe.rewards, recipe.reward_options)
    metrics = MetricsJSONL(recipe.out_dir / "metrics.jsonl", aliases=METRIC_ALIASES)
    trainer = OmniGRPOTrainer(
        model, reward_funcs, recipe.grpo_config(), _dataset(clips, prompt, getattr(getattr(model, "config", None), "omnibench_labels", None)),
        media_store=store, prompt=prompt, modality_dropout=recipe.modality_dropout,
        droppable={c.id: droppable_modalities(c, recipe.modality_dropout_policy) for c in clips},
        peft_config=peft, processing_class=processor,
        callbacks=[FiniteGradients(recipe.max_nonfinite_steps), metrics, *callbacks],
    )
    trainer.omnibench_clips = clips  # for the model card
    return trainer


def run_grpo(recipe: GRPORecipe | dict | str, **overrides) -> Path:
    """Run GRPO from a recipe (object, mapping or YAML path); returns the final model folder."""
    return run_recipe(GRPORecipe, recipe, "grpo", overrides, build_trainer)


# ------------------------------------------------------------------------------------ CLI


def add_grpo_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="YAML recipe (a file with a 'grpo:' section also works)")
    parser.add_argument("--out", help="run folder (overrides the recipe's 'out')")
    parser.add_argument("--model", help="starting model folder, e.g. the SFT run's model/ (overrides 'model')")
    parser.add_argument("--manifest", help="manifest.jsonl (overrides 'manifest')")
    parser.add_argument("--max-steps", type=int, dest="max_steps", help="optimizer steps (overrides 'max_steps')")
    parser.add_argument("--resume", action="store_true", default=None, help="continue from the last checkpoint")
    parser.add_argument("--seed", type=int, help="random seed (overrides 'seed')")
    from omnibench.model.loading import add_model_args

    add_model_args(parser, training=True)  # --device / --dtype / --attn-implementation (override the recipe's)


def cli_grpo(args: argparse.Namespace) -> int:
    keys = ("out", "model", "manifest", "max_steps", "resume", "seed",
            "device", "dtype", "attn_implementation")
    overrides = {k: getattr(args, k, None) for k in keys}
    path = run_grpo(args.config, **overrides)
    print(f"GRPO model saved to {path}")
    return 0
