"""Model-bound value functions: score the target label under every coalition of modalities.

For a clip and a fixed *target* label (the model's own answer by default, or the gold label), a
value function ``v(S)`` over coalitions ``S`` of players scores the target with the players outside
``S`` removed; :mod:`omnibench.attribution.shapley` splits ``v(all) - v(none)`` between the players.
The model, the processor and torch are imported only when a function here runs, so the pure parts
of the package load without them.

Value function (per clip, from :func:`omnibench.model.score_labels`, teacher-forced)
    ``value="prob"`` (default): probability of the target among the label set,
    ``softmax_l(log p("<answer>l</answer>" | input))[target]``. Bounded in [0, 1] and blind to
    label-independent terms (how likely "<answer>" itself is under a coalition), so the Shapley
    values measure evidence *for this label against the others*.
    ``value="logprob"``: the raw teacher-forced log-probability of ``<answer>target</answer>``.

Removal strategies (``omnibench.model.apply_removal``)
    ``drop`` (default): the modality's block and tensors are left out of the input -- only a clean
    measure of reliance if the model has seen such inputs in training (modality dropout);
    ``black``: black frames / silence; ``noise``: Gaussian noise; ``swap``: another clip's modality
    (a seeded derangement of the clips, perceptual-score style).
    A clip without a modality (e.g. no audio track) always has it removed: that player is a dummy.
    The third player ``text`` (``players=("video", "audio", "text")``) replaces the instruction
    prompt by ``null_prompt``.

Scoring position (``position``) -- measured, see ``benchmarks/attribution_bench.py``
    ``<answer>label</answer>`` must be scored where the model actually answers.
    ``"prompt"``: right after the prompt -- exact for a model that answers directly (label-only
    SFT), but a model trained to write ``<think>...</think>`` first never answers there: on a
    reasoning tiny thinker (SynthEmo test_id) the argmax there matched its own generated answer on
    only 18% of clips, so the values describe a label it would not give.
    ``"reasoning"``: after the model's own full-input reasoning, the same text in every coalition.
    The reasoning names the cues and often the label, so it carries the answer into coalitions
    without the media: ``v(all) - v(none)`` fell to 7e-5 and ``sum |phi|`` to 7e-4 (all coalitions
    equal) -- attribution by text leakage, not by perception. Kept for completeness, never a default.
    ``"regenerate"``: after reasoning the model generates itself *under each coalition* (greedy),
    so the text only carries what that coalition lets it perceive; graded values, consistent with
    the model's answer (the full coalition reuses the completions given), dominant modality equal
    to the generation-based variant's on every clip where that one has no tie. Costs one greedy
    generation per coalition.
    ``"auto"`` (default): ``regenerate`` when most full-input completions reason before
    ``<answer>``, else ``prompt`` (:func:`resolve_position`); the result records the one used.

:func:`attribute_generate` is the slower generation-based cross-check (value = 1 when the greedy
answer under the coalition equals the target).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from omnibench.answers import resolve
from omnibench.attribution.result import AttributionResult
from omnibench.attribution.shapley import (
    MODALITIES,
    VALUES,
    coalitions,
    shapley_matrix,
    shares,
    values_from_scores,
)
from omnibench.labels import DFEW7

STRATEGIES: tuple[str, ...] = ("drop", "black", "noise", "swap")
POSITIONS: tuple[str, ...] = ("auto", "prompt", "reasoning", "regenerate")

__all__ = ["POSITIONS", "STRATEGIES", "AttributionConfig", "attribute", "attribute_generate", "coalition_inputs",
           "coalition_scores", "derangement", "resolve_position"]


@dataclass
class AttributionConfig:
    """How :func:`attribute` measures modality attribution."""

    players: tuple[str, ...] = field(default=MODALITIES, metadata={"help": "Shapley players: video, audio (+ text)"})
    strategy: str = field(default="drop", metadata={"help": "removal: drop | black | noise | swap"})
    value: str = field(default="prob", metadata={"help": "prob (target prob. among labels) | logprob (raw)"})
    target: str = field(default="prediction", metadata={"help": "prediction (the model's answer) | gold"})
    position: str = field(default="auto", metadata={"help": "where <answer>label</answer> is scored: auto (regenerate "
                          "for a model that reasons first, else prompt) | prompt (right after it) | reasoning (after "
                          "the full-input reasoning; leaks the answer) | regenerate (after reasoning generated "
                          "under each coalition)"})
    batch_size: int = field(default=8, metadata={"help": "clips per forward pass"})
    seed: int = field(default=0, metadata={"help": "seed for noise and swap donors"})
    prompt: str | None = field(default=None, metadata={"help": "instruction prompt (None = model layer's DEFAULT_PROMPT)"})
    null_prompt: str = field(default="", metadata={"help": "prompt used when the 'text' player is removed"})
    max_new_tokens: int = field(default=96, metadata={"help": "reasoning length for position reasoning/regenerate"})

    def __post_init__(self):
        self.players = tuple(self.players)
        bad = set(self.players) - {"video", "audio", "text"}
        if bad or not self.players or len(set(self.players)) != len(self.players):
            raise ValueError(f"players must be distinct names among video, audio, text; got {self.players}")
        for name, allowed in (("strategy", STRATEGIES), ("value", VALUES), ("target", ("prediction", "gold")),
                              ("position", POSITIONS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"AttributionConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}")



def derangement(n: int, rng: np.random.Generator) -> np.ndarray:
    """A random permutation of range(n) with no fixed point (identity for n < 2)."""
    if n < 2:
        return np.arange(n)
    while True:
        p = rng.permutation(n)
        if not (p == np.arange(n)).any():
            return p


def coalition_inputs(media: Sequence, keep: frozenset, strategy: str = "drop", seed: int = 0,
                     donors: Sequence[int] | None = None) -> tuple[list, list[frozenset]]:
    """Media and modality sets of every clip for one coalition ``keep`` (a subset of video/audio).

    A modality the clip lacks is always absent (dropped). ``donors[i]`` is the clip whose modality
    replaces clip i's under ``swap``; ``noise`` draws from a generator seeded by (seed, i).
    """
    from omnibench.model import apply_removal
    from omnibench.model.inputs import available_modalities

    out_media, out_mods = [], []
    for i, m in enumerate(media):
        avail = available_modalities(m)
        k = frozenset(keep) & avail
        if k == avail:
            out_media.append(m)
            out_mods.append(avail)
            continue
        donor = media[donors[i]] if (strategy == "swap" and donors is not None) else None
        if strategy == "swap" and donor is None:
            raise ValueError("strategy 'swap' needs donors (indices of the clips lending their modality)")
        rng = np.random.default_rng([seed, i])
        m2, mods = apply_removal(m, k | (frozenset(MODALITIES) - avail) if strategy != "drop" else k,
                                 strategy=strategy, rng=rng, donor=donor)
        out_media.append(m2)
        out_mods.append(frozenset(mods) & available_modalities(m2))
    return out_media, out_mods


def _reasoning_prefix(completion: str | None) -> str:
    """The text a model wrote before its ``<answer>`` (its reasoning), used as the scoring prefix."""
    if not completion:
        return ""
    j = completion.find("<answer>")
    return completion[:j] if j >= 0 else completion


def resolve_position(completions: Sequence[str | None] | None) -> str:
    """``position="auto"``: where the model answers. ``"regenerate"`` when at least half of its
    full-input completions write something (reasoning) before ``<answer>``, else ``"prompt"``
    (a label-only model answers right after the prompt). No completions -> ``"prompt"``."""
    if not completions:
        return "prompt"
    reasons = [bool(_reasoning_prefix(c).strip()) for c in completions]
    return "regenerate" if np.mean(reasons) >= 0.5 else "prompt"


def coalition_scores(model, processor, media: Sequence, labels: Sequence[str], config: AttributionConfig,
                     prefix: Sequence[str] | None = None, position: str | None = None,
                     progress: bool = False) -> np.ndarray:
    """(n_clips, 2^k, n_labels) label scores for every coalition of ``config.players``.

    One :func:`omnibench.model.score_labels` call per coalition over all clips (rows grouped by
    coalition, so every forward batch has one modality layout).

    ``position`` (default ``config.position``; "auto" must be resolved first):
    ``prompt`` -> no prefix; ``reasoning`` -> ``prefix`` (one per clip) in every coalition;
    ``regenerate`` -> greedy reasoning generated under each coalition (under the full coalition,
    ``prefix`` is used when given: the reasoning of the completions already generated).
    """
    from omnibench.model import generate, score_labels
    from omnibench.model.inputs import DEFAULT_PROMPT

    position = position or config.position
    if position not in ("prompt", "reasoning", "regenerate"):
        raise ValueError(f"position must be prompt | reasoning | regenerate here, got {position!r}")
    if position == "reasoning" and prefix is None:
        raise ValueError("position='reasoning' needs the reasoning prefix of every clip")
    prompt = config.prompt if config.prompt is not None else DEFAULT_PROMPT
    n = len(media)
    donors = derangement(n, np.random.default_rng(config.seed)) if config.strategy == "swap" else None
    coal = coalitions(config.players)
    out = np.full((n, len(coal), len(labels)), np.nan)
    for j, S in enumerate(coal):
        keep = frozenset(S) & frozenset(MODALITIES)
        media_s, mods_s = coalition_inputs(media, keep, config.strategy, config.seed, donors)
        p = prompt if ("text" in S or "text" not in config.players) else config.null_prompt
        pre = None
        if position == "reasoning" or (position == "regenerate" and prefix is not None and j == len(coal) - 1):
            pre = list(prefix)
        elif position == "regenerate":  # the model's own reasoning under this coalition
            pre = [_reasoning_prefix(c) for c in generate(model, processor, media_s, mods_s, prompt=p,
                                                          max_new_tokens=config.max_new_tokens,
                                                          batch_size=config.batch_size)]
        out[:, j, :] = score_labels(model, processor, media_s, mods_s, list(labels), prompt=p, prefix=pre,
                                    batch_size=config.batch_size)
        if progress:
            print(f"  coalition {'+'.join(sorted(S)) or 'none'}: scored {n} clips", flush=True)
    return out


def media_for(clips, media=None, decode_config=None, cache=None, progress: bool = False):
    """``(clips, media)`` in the same order, through the one :class:`omnibench.data.media.MediaStore`:
    ``clips`` decoded with ``decode_config`` / ``cache`` when ``media`` is None, else ``media`` paired
    by clip id (a clip without media is a ``MediaError`` naming it, never dropped)."""
    from omnibench.data.media import MediaStore

    clips = list(clips)
    store = MediaStore(clips, decode_config, cache) if media is None else MediaStore.from_media(media)
    return clips, store.decode(clips, progress=progress)


def _meta(clips, key):
    return [(c.meta or {}).get(key) for c in clips]


def attribute(model, processor, clips, media=None, labels: Sequence[str] = DFEW7, config: AttributionConfig | None = None,
              completions: Sequence[str] | None = None, predictions: Sequence[str | None] | None = None,
              lexicon: Mapping[str, Sequence[str]] | None = None, decode_config=None, cache=None,
              progress: bool = False) -> AttributionResult:
    """Scoring-based exact Shapley attribution for every clip (no generation unless needed).

    Args:
        clips: manifest clips (gold label, SynthEmo meta: condition, video_label, audio_label).
        media: their decoded Media (decoded here if None).
        config: :class:`AttributionConfig`.
        completions: the model's generated completions under the full input (e.g. from the
            predictions JSONL). Needed for ``position="reasoning"`` (generated here if absent) and
            attached for reasoning-cue faithfulness when given.
        predictions: the model's answers (e.g. parsed from ``completions``); default: argmax of the
            full-input label scores. ``target="prediction"`` attributes these.
        lexicon: cue lexicon for the stated shares (default SynthEmo's CUE_LEXICON).
    """

    cfg = config or AttributionConfig()
    labels = tuple(labels)
    clips, media = media_for(clips, media, decode_config, cache, progress)
    t0 = time.perf_counter()
    if cfg.position != "prompt" and completions is None:
        from omnibench.model import generate
        from omnibench.model.inputs import ALL, DEFAULT_PROMPT

        completions = generate(model, processor, media, ALL, prompt=cfg.prompt or DEFAULT_PROMPT,
                               batch_size=cfg.batch_size, max_new_tokens=cfg.max_new_tokens)
    if completions is not None and len(completions) != len(clips):
        raise ValueError(f"{len(completions)} completions for {len(clips)} clips")
    position = resolve_position(completions) if cfg.position == "auto" else cfg.position
    prefix = [_reasoning_prefix(c) for c in completions] if position != "prompt" else None
    scores = coalition_scores(model, processor, media, labels, cfg, prefix=prefix, position=position,
                              progress=progress)
    full = scores[:, -1, :]
    if predictions is None and completions is not None:
        predictions = [resolve(c, labels).label for c in completions]
    if predictions is None:
        predictions = [labels[i] for i in full.argmax(axis=1)]
    lab_index = {l: i for i, l in enumerate(labels)}
    gold = [c.label for c in clips]
    tgt_labels = list(predictions) if cfg.target == "prediction" else gold
    tidx = np.array([lab_index.get(t, -1) if t is not None else -1 for t in tgt_labels])
    values = np.stack([values_from_scores(scores[:, j, :], tidx, cfg.value) for j in range(scores.shape[1])], axis=1)
    phi = shapley_matrix(values, len(cfg.players))
    res = AttributionResult(
        label_scores=scores, ids=[c.id for c in clips], gold=gold, prediction=list(predictions),
        target=[t if (t is not None and t in lab_index) else None for t in tgt_labels],
        condition=_meta(clips, "condition"), players=cfg.players, values=values, phi=phi, share=shares(phi),
        strategy=cfg.strategy, value_kind=cfg.value, target_kind=cfg.target, position=position, method="score",
        video_label=_meta(clips, "video_label"), audio_label=_meta(clips, "audio_label"),
        seconds=time.perf_counter() - t0,
    )
    if completions is not None:
        res.with_reasoning(completions, lexicon)
    return res


def attribute_generate(model, processor, clips, media, labels: Sequence[str] = DFEW7,
                       config: AttributionConfig | None = None, targets: Sequence[str | None] | None = None,
                       max_new_tokens: int = 64, progress: bool = False) -> AttributionResult:
    """Generation-based cross-check: ``v(S) = 1`` when the greedy answer under coalition S equals the
    target (the full-input generated answer by default, or gold with ``config.target="gold"``), else 0."""
    from omnibench.model import generate
    from omnibench.model.inputs import DEFAULT_PROMPT

    cfg = config or AttributionConfig()
    labels = tuple(labels)
    clips, media = media_for(clips, media)
    prompt = cfg.prompt if cfg.prompt is not None else DEFAULT_PROMPT
    n = len(clips)
    donors = derangement(n, np.random.default_rng(cfg.seed)) if cfg.strategy == "swap" else None
    t0 = time.perf_counter()
    coal = coalitions(cfg.players)
    answers: list[list[str | None]] = []
    full_completions = None
    for S in coal:
        keep = frozenset(S) & frozenset(MODALITIES)
        media_s, mods_s = coalition_inputs(media, keep, cfg.strategy, cfg.seed, donors)
        p = prompt if ("text" in S or "text" not in cfg.players) else cfg.null_prompt
        comps = generate(model, processor, media_s, mods_s, prompt=p, max_new_tokens=max_new_tokens,
                         do_sample=False, batch_size=cfg.batch_size)
        answers.append([resolve(c, labels).label for c in comps])
        if S == frozenset(cfg.players):
            full_completions = comps
        if progress:
            print(f"  coalition {'+'.join(sorted(S)) or 'none'}: generated {n}", flush=True)
    prediction = answers[-1]
    gold = [c.label for c in clips]
    if targets is None:
        targets = prediction if cfg.target == "prediction" else gold
    values = np.array([[np.nan if t is None else float(a[i] == t) for a in answers] for i, t in enumerate(targets)])
    phi = shapley_matrix(values, len(cfg.players))
    res = AttributionResult(
        ids=[c.id for c in clips], gold=gold, prediction=list(prediction), target=list(targets),
        condition=_meta(clips, "condition"), players=cfg.players, values=values, phi=phi, share=shares(phi),
        strategy=cfg.strategy, value_kind="match", target_kind=cfg.target, position="generate", method="generate",
        video_label=_meta(clips, "video_label"), audio_label=_meta(clips, "audio_label"),
        completion=list(full_completions), seconds=time.perf_counter() - t0,
    )
    return res

