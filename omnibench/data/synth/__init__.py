"""SynthEmo: an offline, seeded audio-visual emotion benchmark with known modality evidence.

Every clip is a real mp4 (H.264 video + AAC audio, written with PyAV) showing a drawn face and
carrying a synthetic voice.  Both express one of the seven DFEW emotions through explicit *cues*:

* video: mouth curve / openness / width / asymmetry, brow tilt and height, eye openness, and head
  motion (nod, shake, tremor, drift, tilt);
* audio: pitch level, slope and arch (contour), loudness, syllable rate, roughness (amplitude
  modulation at a class-specific rate: a 26 Hz growl for anger, an 11 Hz creak for disgust) and
  vibrato (a 6.5 Hz pitch quaver for fear).

Each clip has an *evidence condition*: ``both`` (face and voice agree), ``video`` (the voice is
neutral) or ``audio`` (the face is neutral); the label always follows the informative modality, so
modality attribution can be checked against ground truth.  Labels are balanced within each split
and condition (clip ``i`` of a split has condition ``i % 3`` and label ``(i // 3) % 7``).

Nuisances vary per clip in every split and never imitate a cue: lighting and colour cast,
background, pixel noise, coloured background noise (broadband and unmodulated, unlike the
periodic roughness cue) and per-clip voice-pitch jitter.  ``test_actors`` shifts one factor, the
actors: identities never seen in training, drawn from the training ranges of face and voice, nothing
else shifted (a model that learned the actors rather than the cues drops here, not on ``test_id``).
``test_ood`` shifts six factors
(:data:`OOD_FACTORS`): unseen actors, unseen face shapes and colours, other lighting and
backgrounds, a different video-noise kind (blur + scan lines), a shifted voice range and a
different audio-nuisance kind (mains hum + reverberation).  Any subset of the factors can be
shifted (``generate_split(..., shift=[...])``), which is how ``experiments/synth_baseline.py`` runs
the one-factor-at-a-time OOD diagnosis.  Random draws come from per-clip, per-factor streams
seeded by ``(seed, split, index)``, so shifting one factor changes nothing else, generation runs in
parallel, and an interrupted run resumes.

``cold_start`` clips carry a short reasoning text built only from the cues actually present,
``<think>…</think><answer>label</answer>``, written with a small fixed vocabulary
(:data:`VOCABULARY`, :func:`corpus`); :data:`CUE_LEXICON` lists the cue words per modality for
reasoning-cue attribution.

The package, one job per module (imports flow down the list):

* :mod:`~omnibench.data.synth.cues`: the cue language (labels, conditions, cue names, neutral values,
  prototypes, phrases, thresholds, the lexicon, reasoning and description texts); imports only the
  label set, so the tokenizer and the attribution read it without loading a renderer;
* :mod:`~omnibench.data.synth.plan`: configuration, splits, seeding and the per-clip plan (every
  random choice about a clip);
* :mod:`~omnibench.data.synth.video` and :mod:`~omnibench.data.synth.audio`: the renderers;
* :mod:`~omnibench.data.synth.generation`: mp4 writing, split folders, the manifest, the CLI.

Every name is importable from here (``from omnibench.data import synth; synth.generate(...)``).  The
cue language is loaded at once; the other modules (numpy renderers, PyAV, pandas) only when one of
their names is first used, so ``import omnibench.data.synth.cues`` stays cheap.
"""

from __future__ import annotations

import importlib

from omnibench.data.synth.cues import (
    AUDIO_CUES,
    AUDIO_NEUTRAL,
    AUDIO_PHRASES,
    AUDIO_PROTOTYPES,
    CONDITIONS,
    CUE_LEXICON,
    LABELS,
    NEUTRAL_PHRASES,
    PHRASE_THRESHOLD,
    VIDEO_CUES,
    VIDEO_NEUTRAL,
    VIDEO_PHRASES,
    VIDEO_PROTOTYPES,
    VOCABULARY,
    corpus,
    description_text,
    present_cues,
    reasoning_text,
)

#: the names loaded on first use, by module (see the docstring)
_LAZY_MODULES: dict[str, tuple[str, ...]] = {
    "plan": ("CUE_JITTER", "DRAW_SPLIT", "OOD_FACTORS", "SPLITS", "TEST_SPLITS", "SynthConfig", "clip_seed", "default_shift",
             "plan_clip"),
    "video": ("render_frames",),
    "audio": ("render_audio",),
    "generation": (
        "GENERATOR_VERSION",
        "_meta",
        "add_synth_args",
        "cli_synth",
        "generate",
        "generate_split",
        "summarize",
        "write_mp4",
    ),
}
_LAZY: dict[str, str] = {name: module for module, names in _LAZY_MODULES.items() for name in names}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "AUDIO_CUES",
    "AUDIO_NEUTRAL",
    "AUDIO_PHRASES",
    "AUDIO_PROTOTYPES",
    "CONDITIONS",
    "CUE_JITTER",
    "CUE_LEXICON",
    "DRAW_SPLIT",
    "GENERATOR_VERSION",
    "LABELS",
    "NEUTRAL_PHRASES",
    "OOD_FACTORS",
    "PHRASE_THRESHOLD",
    "SPLITS",
    "TEST_SPLITS",
    "VIDEO_CUES",
    "VIDEO_NEUTRAL",
    "VIDEO_PHRASES",
    "VIDEO_PROTOTYPES",
    "VOCABULARY",
    "SynthConfig",
    "add_synth_args",
    "cli_synth",
    "clip_seed",
    "corpus",
    "default_shift",
    "description_text",
    "generate",
    "generate_split",
    "plan_clip",
    "present_cues",
    "reasoning_text",
    "render_audio",
    "render_frames",
    "summarize",
    "write_mp4",
]  # fmt: skip
