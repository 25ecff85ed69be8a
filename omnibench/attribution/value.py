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

Removal (``strategy``): how a modality outside the coalition is removed -- ``drop`` (default),
    ``black``, ``noise`` or ``swap``, defined and documented in :mod:`omnibench.attribution.removal`.
    A clip without a modality (e.g. no audio track) always has it removed: that player is a dummy.
    The third player ``text`` (``players=("video", "audio", "text")``) replaces the instruction
    prompt by ``null_prompt``.

Coalitions: :func:`over_coalitions` is the one loop over them (the clips with the players outside a
    coalition removed, and its prompt); :func:`coalition_scores` scores the labels in it,
    :func:`attribute_generate` and :func:`~omnibench.attribution.perceptual.perceptual_score`
    generate in it.

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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from omnibench.answers import resolve
from omnibench.attribution.removal import STRATEGIES, coalition_inputs, derangement
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

POSITIONS: tuple[str, ...] = ("auto", "prompt", "reasoning", "regenerate")

__all__ = ["POSITIONS", "AttributionConfig", "Coalition", "attribute", "attribute_generate", "coalition_scores",
           "over_coalitions", "resolve_position"]


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



class Coalition(NamedTuple):
    """One coalition as :func:`over_coalitions` hands it to its ``run``: the ``index`` of the coalition,
    its ``players``, and every clip's ``media`` and ``modalities`` with the players outside it removed,
    with the ``prompt`` it is asked with."""

    index: int
    players: frozenset
    media: list
    modalities: list
    prompt: str


def over_coalitions(media: Sequence, run: Callable[[Coalition], Any], players: Sequence[str] = MODALITIES,
                    strategy: str = "drop", seed: int = 0, prompt: str | None = None, null_prompt: str = "",
                    coalition_list: Iterable[frozenset] | None = None, donors: Sequence[int] | None = None,
                    report: str | None = None) -> list:
    """The loop over coalitions: ``run(coalition)`` for each, in order; returns run's results.

    ``coalition_list``: the coalitions (default: all of ``players``, :func:`coalitions` order, the full
    one last). Each coalition's media remove the modalities outside it by ``strategy``
    (:func:`~omnibench.attribution.removal.coalition_inputs`; ``swap`` donors: ``donors``, default a
    derangement seeded by ``seed``); its prompt is ``prompt`` (None: the model layer's
    ``DEFAULT_PROMPT``), or ``null_prompt`` when ``text`` is a player outside it. ``report``: printed
    after each coalition (``"  coalition video+audio: <report>"``)."""
    if prompt is None:
        from omnibench.model.inputs import DEFAULT_PROMPT

        prompt = DEFAULT_PROMPT
    if strategy == "swap" and donors is None:
        donors = derangement(len(media), np.random.default_rng(seed))
    out = []
    for j, S in enumerate(coalitions(players) if coalition_list is None else coalition_list):
        keep = frozenset(S) & frozenset(MODALITIES)
        media_s, mods_s = coalition_inputs(media, keep, strategy, seed, donors)
        p = prompt if ("text" in S or "text" not in players) else null_prompt
        out.append(run(Coalition(j, frozenset(S), media_s, mods_s, p)))
        if report:
            print(f"  coalition {'+'.join(sorted(S)) or 'none'}: {report}", flush=True)
    return out


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

    position = position or config.position
    if position not in ("prompt", "reasoning", "regenerate"):
        raise ValueError(f"position must be prompt | reasoning | regenerate here, got {position!r}")
    if position == "reasoning" and prefix is None:
        raise ValueError("position='reasoning' needs the reasoning prefix of every clip")
    n = len(media)
    last = len(coalitions(config.players)) - 1

    def score(c: Coalition) -> np.ndarray:
        pre = None
        if position == "reasoning" or (position == "regenerate" and prefix is not None and c.index == last):
            pre = list(prefix)
        elif position == "regenerate":  # the model's own reasoning under this coalition
            pre = [_reasoning_prefix(t) for t in generate(model, processor, c.media, c.modalities, prompt=c.prompt,
                                                          max_new_tokens=config.max_new_tokens,
                                                          batch_size=config.batch_size)]
        return score_labels(model, processor, c.media, c.modalities, list(labels), prompt=c.prompt, prefix=pre,
                            batch_size=config.batch_size)

    scored = over_coalitions(media, score, config.players, config.strategy, config.seed, config.prompt,
                             config.null_prompt, report=f"scored {n} clips" if progress else None)
    out = np.full((n, len(scored), len(labels)), np.nan)
    for j, sc in enumerate(scored):
        out[:, j, :] = sc
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
        lexicon: cue lexicon for the stated shares (default: ``cue_lexicon(*FAITHFULNESS_FAMILIES)`` of
            :mod:`omnibench.data.lexicons`, SynthEmo's cue words).
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

    cfg = config or AttributionConfig()
    labels = tuple(labels)
    clips, media = media_for(clips, media)
    n = len(clips)
    t0 = time.perf_counter()

    def answer(c: Coalition) -> list[str]:
        return generate(model, processor, c.media, c.modalities, prompt=c.prompt, max_new_tokens=max_new_tokens,
                        do_sample=False, batch_size=cfg.batch_size)

    generated = over_coalitions(media, answer, cfg.players, cfg.strategy, cfg.seed, cfg.prompt, cfg.null_prompt,
                                report=f"generated {n}" if progress else None)
    answers = [[resolve(c, labels).label for c in comps] for comps in generated]
    full_completions = generated[coalitions(cfg.players).index(frozenset(cfg.players))]
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
