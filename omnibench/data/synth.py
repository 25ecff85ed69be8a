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
periodic roughness cue) and per-clip voice-pitch jitter.  ``test_ood`` shifts six factors
(:data:`OOD_FACTORS`): unseen actors, unseen face shapes and colours, other lighting and
backgrounds, a different video-noise kind (blur + scan lines), a shifted voice range and a
different audio-nuisance kind (mains hum + reverberation).  Any subset of the factors can be
shifted (``generate_split(..., shift=[...])``), which is how ``benchmarks/synth_baseline.py`` runs
the one-factor-at-a-time OOD diagnosis.  Random draws come from per-clip, per-factor streams
seeded by ``(seed, split, index)``, so shifting one factor changes nothing else, generation runs in
parallel, and an interrupted run resumes.

``cold_start`` clips carry a short reasoning text built only from the cues actually present,
``<think>…</think><answer>label</answer>``, written with a small fixed vocabulary
(:data:`VOCABULARY`, :func:`corpus`); :data:`CUE_LEXICON` lists the cue words per modality for
reasoning-cue attribution.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import re
import sys
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from omnibench.data.manifest import Clip, read_manifest, write_manifest
from omnibench.labels import DFEW7

#: bump when the rendering changes, so resumed folders are regenerated
GENERATOR_VERSION = 3

LABELS: tuple[str, ...] = DFEW7
CONDITIONS: tuple[str, ...] = ("both", "video", "audio")
SPLITS: tuple[str, ...] = ("train", "cold_start", "test_id", "test_ood")
#: factors that ``test_ood`` shifts (all of them by default); see the module docstring
OOD_FACTORS: tuple[str, ...] = ("actors", "face", "lighting", "video_noise", "voice", "audio_noise")
_SPLIT_CODE = {"train": 11, "cold_start": 12, "test_id": 13, "test_ood": 14}

# --------------------------------------------------------------------------------------------
# Cues: the neutral value, per-emotion prototypes (full intensity) and per-clip jitter (std).
# A clip's cue = neutral + intensity * (prototype - neutral) + jitter; intensity ~ U(0.5, 1).
# --------------------------------------------------------------------------------------------

VIDEO_NEUTRAL = {
    "mouth_curve": 0.0, "mouth_open": 0.05, "mouth_width": 1.0, "mouth_asym": 0.0, "brow_tilt": 0.0, "brow_raise": 0.0,
    "eye_open": 1.0, "nod": 0.0, "shake": 0.0, "tremor": 0.0, "drift": 0.0, "tilt": 0.0,
}  # fmt: skip
AUDIO_NEUTRAL = {
    "pitch_st": 0.0, "pitch_slope": -1.0, "pitch_arch": 0.0, "loudness_db": 0.0, "syllable_rate": 4.0,
    "rough_depth": 0.0, "rough_rate": 0.0, "vibrato": 0.0,
}  # fmt: skip
#: cue names per modality (keys of ``meta["cues"]``)
VIDEO_CUES: tuple[str, ...] = tuple(VIDEO_NEUTRAL)
AUDIO_CUES: tuple[str, ...] = tuple(AUDIO_NEUTRAL)

_V = VIDEO_NEUTRAL
VIDEO_PROTOTYPES: dict[str, dict[str, float]] = {
    "neutral": dict(_V),
    "happy": {**_V, "mouth_curve": 1.0, "mouth_open": 0.35, "mouth_width": 1.15, "brow_raise": 0.2,
              "eye_open": 0.65, "nod": 3.0},
    "sad": {**_V, "mouth_curve": -0.85, "mouth_width": 0.9, "brow_tilt": -0.9, "eye_open": 0.6,
            "drift": 4.0, "tilt": 6.0},
    "angry": {**_V, "mouth_curve": -0.4, "mouth_open": 0.3, "mouth_width": 0.85, "brow_tilt": 1.0,
              "brow_raise": -0.6, "eye_open": 0.75, "shake": 3.0},
    "surprise": {**_V, "mouth_open": 1.0, "mouth_width": 0.62, "brow_raise": 1.0, "eye_open": 1.45,
                 "drift": -4.0},
    "disgust": {**_V, "mouth_curve": -0.3, "mouth_open": 0.15, "mouth_asym": 0.9, "brow_tilt": 0.5,
                "brow_raise": -0.4, "eye_open": 0.7, "tilt": -7.0},
    "fear": {**_V, "mouth_curve": -0.3, "mouth_open": 0.55, "mouth_width": 1.25, "brow_tilt": -0.7,
             "brow_raise": 0.8, "eye_open": 1.4, "tremor": 1.6},
}  # fmt: skip
_A = AUDIO_NEUTRAL
AUDIO_PROTOTYPES: dict[str, dict[str, float]] = {
    "neutral": dict(_A),
    "happy": {**_A, "pitch_st": 2.5, "pitch_slope": 1.0, "pitch_arch": 4.0, "loudness_db": 3.0,
              "syllable_rate": 5.5},
    "sad": {**_A, "pitch_st": -2.0, "pitch_slope": -5.0, "loudness_db": -7.0, "syllable_rate": 2.5},
    "angry": {**_A, "pitch_st": 1.5, "pitch_slope": -2.0, "loudness_db": 7.0, "syllable_rate": 4.5,
              "rough_depth": 0.75, "rough_rate": 26.0},
    "surprise": {**_A, "pitch_st": 4.0, "pitch_slope": 9.0, "loudness_db": 3.0, "syllable_rate": 3.5},
    "disgust": {**_A, "pitch_st": -1.5, "pitch_slope": 0.0, "pitch_arch": -4.0, "loudness_db": -3.0,
                "syllable_rate": 2.8, "rough_depth": 0.6, "rough_rate": 11.0},
    "fear": {**_A, "pitch_st": 4.5, "pitch_slope": 0.0, "loudness_db": -1.0, "syllable_rate": 6.5,
             "vibrato": 1.2},
}  # fmt: skip
CUE_JITTER: dict[str, float] = {
    "mouth_curve": 0.12, "mouth_open": 0.07, "mouth_width": 0.06, "mouth_asym": 0.1, "brow_tilt": 0.12, "brow_raise": 0.12,
    "eye_open": 0.08, "nod": 0.5, "shake": 0.5, "tremor": 0.25, "drift": 0.8, "tilt": 1.5,
    "pitch_st": 1.0, "pitch_slope": 1.0, "pitch_arch": 0.8, "loudness_db": 1.2, "syllable_rate": 0.35,
    "rough_depth": 0.06, "rough_rate": 1.5, "vibrato": 0.12,
}  # fmt: skip
_CUE_RANGE: dict[str, tuple[float, float]] = {
    "mouth_open": (0.0, 1.2), "mouth_width": (0.5, 1.4), "mouth_asym": (-0.3, 1.2), "eye_open": (0.35, 1.7),
    "nod": (0.0, 5.0), "shake": (0.0, 5.0), "tremor": (0.0, 3.0), "syllable_rate": (1.8, 8.0),
    "rough_depth": (0.0, 0.95), "rough_rate": (0.0, 40.0), "vibrato": (0.0, 2.0),
}  # fmt: skip

# --------------------------------------------------------------------------------------------
# Reasoning text: cue phrases (present when the cue deviates from neutral by >= threshold).
# --------------------------------------------------------------------------------------------

#: (cue, direction) -> phrase; direction +1 means above neutral, -1 below
VIDEO_PHRASES: dict[tuple[str, int], str] = {
    ("mouth_curve", 1): "a smiling mouth", ("mouth_curve", -1): "a downturned mouth",
    ("mouth_open", 1): "an open mouth", ("mouth_width", 1): "stretched lips",
    ("mouth_width", -1): "rounded lips", ("mouth_asym", 1): "a crooked mouth",
    ("brow_tilt", 1): "knitted brows", ("brow_tilt", -1): "lifted inner brows",
    ("brow_raise", 1): "raised brows", ("brow_raise", -1): "lowered brows",
    ("eye_open", 1): "wide eyes", ("eye_open", -1): "narrowed eyes",
    ("nod", 1): "a nodding head", ("shake", 1): "a shaking head", ("tremor", 1): "a trembling head",
    ("drift", 1): "a drooping head", ("drift", -1): "a head pulled back",
    ("tilt", 1): "a tilted head", ("tilt", -1): "a tilted head",
}  # fmt: skip
AUDIO_PHRASES: dict[tuple[str, int], str] = {
    ("pitch_st", 1): "a high pitch", ("pitch_st", -1): "a low pitch",
    ("pitch_slope", 1): "a rising tone", ("pitch_slope", -1): "a falling tone",
    ("pitch_arch", 1): "a lilting melody", ("pitch_arch", -1): "a dipping melody",
    ("loudness_db", 1): "loud volume", ("loudness_db", -1): "quiet volume",
    ("syllable_rate", 1): "fast syllables", ("syllable_rate", -1): "slow syllables",
    ("rough_depth", 1): "a harsh growl", ("rough_depth", 2): "a creaky rasp",
    ("vibrato", 1): "a quavering sound",
}  # fmt: skip
PHRASE_THRESHOLD: dict[str, float] = {
    "mouth_curve": 0.3, "mouth_open": 0.25, "mouth_width": 0.12, "mouth_asym": 0.35, "brow_tilt": 0.35, "brow_raise": 0.3,
    "eye_open": 0.2, "nod": 1.2, "shake": 1.2, "tremor": 0.6, "drift": 1.5, "tilt": 3.0,
    "pitch_st": 1.8, "pitch_slope": 2.5, "pitch_arch": 1.5, "loudness_db": 2.5, "syllable_rate": 0.8, "rough_depth": 0.25,
    "vibrato": 0.4,
}  # fmt: skip
_T_FACE_SHOWS = "The face shows {cues}."
_T_VOICE_HAS = "The voice has {cues}."
_T_FACE_PLAIN = "The face is calm and still."
_T_VOICE_PLAIN = "The voice is plain and steady."
_T_BOTH = "Face and voice agree: {label}."
_T_FACE_ONLY = "The face carries the emotion: {label}."
_T_VOICE_ONLY = "The voice carries the emotion: {label}."
_T_NEUTRAL = "No cue stands out: {label}."
_T_FACE_FAINT = "The face shows faint signs."  # no single cue passes its threshold (rare, weak clips)
_T_VOICE_FAINT = "The voice has faint signs."
_FUNCTION_WORDS = {"a", "an", "and"}


def _words(text: str) -> list[str]:
    return re.findall(r"</?\w+>|\w+|[^\w\s]", text)


#: cue words per modality (for reasoning-cue attribution); no word appears in both lists, and none
#: appears in the neutral sentences ("The face is calm and still.", "The voice is plain and steady.")
CUE_LEXICON: dict[str, list[str]] = {
    "video": sorted({w for p in VIDEO_PHRASES.values() for w in _words(p)} - _FUNCTION_WORDS),
    "audio": sorted({w for p in AUDIO_PHRASES.values() for w in _words(p)} - _FUNCTION_WORDS),
}
#: words of the sentences saying a modality carries no emotion (not cue words)
NEUTRAL_PHRASES: dict[str, str] = {"video": _T_FACE_PLAIN, "audio": _T_VOICE_PLAIN}


def _join(phrases: Sequence[str]) -> str:
    return phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]


def _think(parts: Sequence[str], label: str) -> str:
    return "<think>" + " ".join(parts) + "</think><answer>" + label + "</answer>"


def corpus() -> list[str]:
    """Reasoning texts covering every word, phrase and template that cold_start reasoning can produce."""
    texts = []
    vp, ap = sorted(set(VIDEO_PHRASES.values())), sorted(set(AUDIO_PHRASES.values()))
    for i, label in enumerate(LABELS):
        v = [vp[(2 * i + j) % len(vp)] for j in range(3)]
        a = [ap[(2 * i + j) % len(ap)] for j in range(3)]
        texts.append(_think([_T_FACE_SHOWS.format(cues=_join(v[:2])), _T_VOICE_HAS.format(cues=_join(a[:2])),
                             _T_BOTH.format(label=label)], label))  # fmt: skip
        texts.append(_think([_T_FACE_SHOWS.format(cues=_join(v)), _T_VOICE_PLAIN,
                             _T_FACE_ONLY.format(label=label)], label))  # fmt: skip
        texts.append(_think([_T_FACE_PLAIN, _T_VOICE_HAS.format(cues=_join(a)),
                             _T_VOICE_ONLY.format(label=label)], label))  # fmt: skip
        texts.append(_think([_T_FACE_PLAIN, _T_VOICE_PLAIN, _T_NEUTRAL.format(label=label)], label))
    texts.append(_think([_T_FACE_FAINT, _T_VOICE_FAINT, _T_BOTH.format(label=LABELS[0])], LABELS[0]))
    texts += vp + ap
    return texts


#: every token (words, punctuation, tags) reasoning can produce; a locally built tokenizer covers it
VOCABULARY: tuple[str, ...] = tuple(sorted({w for t in corpus() for w in _words(t)}))


def present_cues(cues: dict[str, float], modality: str, top: int = 3) -> list[str]:
    """Phrases for the ``top`` most salient cues of ``modality`` that deviate from neutral (strongest first)."""
    neutral, phrases = (
        (VIDEO_NEUTRAL, VIDEO_PHRASES) if modality == "video" else (AUDIO_NEUTRAL, AUDIO_PHRASES)
    )
    found: list[tuple[float, str]] = []
    for name, base in neutral.items():
        if name not in PHRASE_THRESHOLD:
            continue
        dev = cues[name] - base
        direction = 1 if dev > 0 else -1
        if name == "rough_depth" and cues.get("rough_rate", 0.0) < 18.0:
            direction = 2
        phrase = phrases.get((name, direction))
        if phrase is None:
            continue
        saliency = abs(dev) / PHRASE_THRESHOLD[name]
        if saliency >= 1.0 and phrase not in [p for _, p in found]:
            found.append((saliency, phrase))
    found.sort(key=lambda sp: -sp[0])
    return [p for _, p in found[:top]]


def reasoning_text(label: str, condition: str, cues: dict[str, float]) -> str:
    """The cold_start explanation: only the informative modality's present cues are cited."""
    v = present_cues(cues, "video", top=2 if condition == "both" else 3)
    a = present_cues(cues, "audio", top=2 if condition == "both" else 3)
    if label == "neutral":
        return _think([_T_FACE_PLAIN, _T_VOICE_PLAIN, _T_NEUTRAL.format(label=label)], label)
    face = _T_FACE_SHOWS.format(cues=_join(v)) if v else _T_FACE_FAINT
    voice = _T_VOICE_HAS.format(cues=_join(a)) if a else _T_VOICE_FAINT
    if condition == "both":
        return _think([face, voice, _T_BOTH.format(label=label)], label)
    if condition == "video":
        return _think([face, _T_VOICE_PLAIN, _T_FACE_ONLY.format(label=label)], label)
    return _think([_T_FACE_PLAIN, voice, _T_VOICE_ONLY.format(label=label)], label)


def description_text(cues: dict[str, float], top: int = 3) -> str:
    """What the face and the voice show, with no emotion named: the text the tiny base model learns to
    say before any emotion training (:mod:`omnibench.model.perception`). Every modality is described
    by its ``top`` present cues, or as calm / plain when none passes its threshold."""
    v, a = present_cues(cues, "video", top=top), present_cues(cues, "audio", top=top)
    face = _T_FACE_SHOWS.format(cues=_join(v)) if v else _T_FACE_PLAIN
    voice = _T_VOICE_HAS.format(cues=_join(a)) if a else _T_VOICE_PLAIN
    return f"{face} {voice}"


# --------------------------------------------------------------------------------------------
# Configuration, actors and the per-clip plan (all random draws happen here).
# --------------------------------------------------------------------------------------------


@dataclass
class SynthConfig:
    """Rendering parameters shared by all clips of a generation run."""

    duration: float = field(default=1.5, metadata={"help": "clip length in seconds"})
    fps: int = field(default=8, metadata={"help": "video frame rate (12 frames at 1.5 s)"})
    size: int = field(default=112, metadata={"help": "frame height and width in pixels"})
    sr: int = field(default=16000, metadata={"help": "audio sample rate (Hz) of the AAC track"})
    n_actors: int = field(default=16, metadata={"help": "actors in train / cold_start / test_id"})
    n_ood_actors: int = field(default=8, metadata={"help": "unseen actors used when 'actors' is shifted"})
    crf: int = field(default=18, metadata={"help": "H.264 constant rate factor (lower = better quality)"})
    min_intensity: float = field(
        default=0.5, metadata={"help": "cue intensity ~ U(min_intensity, max_intensity) per modality (1 = prototype)"}
    )
    max_intensity: float = field(default=1.0, metadata={"help": "upper end of the cue intensity draw"})
    max_onset: float = field(
        default=0.3, metadata={"help": "expression onset ~ U(0, max_onset) seconds (then a 0.25 s ramp)"}
    )


def _rng(*keys: int | str) -> np.random.Generator:
    """A generator seeded by a tuple of ints/strings (strings hashed with crc32, stable across runs)."""
    ints = [k if isinstance(k, int) else zlib.crc32(k.encode()) for k in keys]
    return np.random.default_rng([int(i) & 0xFFFFFFFF for i in ints])


def clip_seed(seed: int, split: str, index: int) -> int:
    """The per-clip seed derived from (seed, split, index)."""
    ss = np.random.SeedSequence(
        [int(seed) & 0xFFFFFFFF, _SPLIT_CODE.get(split, zlib.crc32(split.encode())), index]
    )
    return int(ss.generate_state(1)[0])


def _actor_index(actor: str) -> int:
    """The number in an actor name ("o03" -> 3)."""
    digits = re.sub(r"\D", "", actor)
    return int(digits) if digits else 0


def _face(seed: int, actor: str, shifted: bool) -> dict:
    r = _rng(seed, "face", actor)
    u = r.uniform
    if not shifted:
        skin = np.array([235, 205, 180]) + u(0, 1) * (np.array([150, 100, 75]) - [235, 205, 180])
        hair = np.array([[40, 30, 25], [95, 60, 35], [200, 170, 110], [20, 20, 22]][r.integers(4)], float)
        face = {"rx": u(0.29, 0.34), "aspect": u(1.08, 1.24), "eye_sep": u(0.36, 0.46), "eye_size": u(0.9, 1.1),
                    "hairline": u(0.48, 0.62), "mouth_y": u(0.42, 0.5), "mouth_scale": u(0.9, 1.1),
                    "offset": (u(-0.035, 0.035), u(-0.03, 0.03)), "jaw": 2.0, "hair_slope": 0.0}  # fmt: skip
        iris = np.array([[60, 40, 30], [40, 70, 110], [60, 90, 50]][r.integers(3)], float)
    else:  # unseen skin/hair/iris colours, head outline (squarer) and hair style (low, slanted fringe)
        i = _actor_index(actor)  # colours cycle over actors so every seed shifts by the same amounts
        skin = np.array([[242, 218, 198], [135, 92, 70], [212, 192, 162], [198, 176, 182]][i % 4], float)
        hair = np.array([[170, 70, 40], [150, 150, 150], [235, 225, 200], [70, 45, 90]][(i + i // 4) % 4], float)
        face = {"rx": u(0.29, 0.34), "aspect": u(1.08, 1.24), "eye_sep": u(0.36, 0.46), "eye_size": u(0.9, 1.1),
                    "hairline": u(0.42, 0.48), "mouth_y": u(0.42, 0.5), "mouth_scale": u(0.9, 1.1),
                    "offset": (u(-0.035, 0.035), u(-0.03, 0.03)), "jaw": u(2.25, 2.5),
                    "hair_slope": u(0.1, 0.2) * (-1) ** i}  # fmt: skip
        iris = np.array([[120, 60, 140], [30, 30, 30], [140, 110, 40]][r.integers(3)], float)
    skin = np.clip(skin + r.normal(0, 6, 3), 0, 255)
    face.update(skin=skin, hair=hair, iris=iris, lip=np.clip(skin * [0.78, 0.5, 0.5], 0, 255),
                brow=np.clip(hair * 0.7, 0, 255), brow_w=u(1.2, 1.8))  # fmt: skip
    return face


def _voice(seed: int, actor: str, shifted: bool) -> dict:
    r = _rng(seed, "voice", actor)
    u = r.uniform
    if not shifted:
        f0 = math.exp(u(math.log(105), math.log(220)))
        formant = u(0.9, 1.1)
        tilt = u(-9.0, -6.0)
    else:  # a shifted voice range (higher or lower than any training voice), alternating over actors
        i = _actor_index(actor)
        high = i % 2 == 0
        f0 = u(222, 236) if high else u(96, 103)
        formant = u(1.1, 1.13) if high else u(0.87, 0.9)
        tilt = u(-10.5, -9.5) if (i // 2) % 2 else u(-5.5, -5.0)
    return {"f0": f0, "formant": formant, "tilt_db": tilt, "level_db": u(-1.5, 1.5)}


def _actor_name(seed: int, split: str, index: int, shift: frozenset, cfg: SynthConfig) -> str:
    r = _rng(clip_seed(seed, split, index), "actor")
    if "actors" in shift:
        return f"o{r.integers(cfg.n_ood_actors):02d}"
    return f"a{r.integers(cfg.n_actors):02d}"


def _draw_cues(r: np.random.Generator, proto: dict, neutral: dict, intensity: float) -> dict[str, float]:
    cues = {}
    for k, base in neutral.items():
        v = base + intensity * (proto[k] - base) + r.normal(0, CUE_JITTER[k])
        if k == "rough_rate":  # the modulation rate names the kind of roughness: not scaled by intensity
            v = proto[k] + r.normal(0, CUE_JITTER[k]) if proto["rough_depth"] > 0 else 0.0
        lo, hi = _CUE_RANGE.get(k, (-np.inf, np.inf))
        cues[k] = round(float(np.clip(v, lo, hi)), 4)
    return cues


def _nuisance(cs: int, shift: frozenset) -> dict:
    """Per-clip nuisance values (lighting, background, noise); none of them imitates a cue."""
    r = _rng(cs, "lighting")
    if "lighting" not in shift:
        light = {"gain": r.uniform(0.8, 1.15), "cast": r.uniform(0.92, 1.08, 3).round(4).tolist(),
                     "gradient": r.uniform(0.0, 0.2), "angle": r.uniform(0, 2 * np.pi),
                     "bg": r.uniform([70, 80, 90], [170, 175, 185]).round(1).tolist(), "stripes": 0.0}  # fmt: skip
    else:  # dim or harsh side light, strong colour cast, striped background
        light = {"gain": r.uniform(0.72, 0.77) if r.random() < 0.5 else r.uniform(1.15, 1.19),
                     "cast": (np.array([1.0, 1.0, 1.0]) + r.choice([-1, 1]) * np.array([0.12, 0.0, -0.12])
                           * r.uniform(0.8, 1.0)).round(4).tolist(),
                     "gradient": r.uniform(0.2, 0.26), "angle": r.uniform(0, 2 * np.pi),
                     "bg": r.uniform([40, 40, 40], [210, 210, 210]).round(1).tolist(), "stripes": r.uniform(6, 12)}  # fmt: skip
    r = _rng(cs, "video_noise")
    if "video_noise" not in shift:
        vnoise = {"kind": "gaussian", "sigma": r.uniform(0.0, 6.0)}
    else:  # a different kind: blur + scan-line flicker + coarse colour blotches
        vnoise = {"kind": "blur_scanlines", "sigma": r.uniform(0.5, 0.9), "scan": r.uniform(4, 8)}
    r = _rng(cs, "audio_noise")
    if "audio_noise" not in shift:
        anoise = {"kind": "coloured", "snr_db": r.uniform(15, 40) if r.random() < 0.85 else 99.0,
                      "colour": r.uniform(0.0, 2.0)}  # fmt: skip
    else:  # a different kind: mains hum + room reverberation
        anoise = {"kind": "hum_reverb", "hum_hz": float(r.choice([50.0, 60.0])), "hum_snr_db": r.uniform(26, 34),
                      "rt60": r.uniform(0.2, 0.3), "wet": r.uniform(0.06, 0.12)}  # fmt: skip
    r = _rng(cs, "voice_jitter")
    return dict(light, video_noise=vnoise, audio_noise=anoise, pitch_jitter_st=r.normal(0, 1.5))


def plan_clip(
    seed: int, split: str, index: int, shift: Iterable[str] = (), cfg: SynthConfig | None = None
) -> dict:
    """Everything about clip ``index`` of ``split`` except the pixels and samples (cheap, deterministic)."""
    cfg = cfg or SynthConfig()
    shift = frozenset(shift)
    unknown = shift - set(OOD_FACTORS)
    if unknown:
        raise ValueError(f"unknown OOD factor(s) {sorted(unknown)}; choose from {OOD_FACTORS}")
    cs = clip_seed(seed, split, index)
    condition = CONDITIONS[index % 3]
    label = LABELS[(index // 3) % len(LABELS)]
    video_label = label if condition in ("both", "video") else "neutral"
    audio_label = label if condition in ("both", "audio") else "neutral"
    r = _rng(cs, "cues")
    iv, ia = r.uniform(cfg.min_intensity, cfg.max_intensity), r.uniform(cfg.min_intensity, cfg.max_intensity)
    cues = {**_draw_cues(r, VIDEO_PROTOTYPES[video_label], VIDEO_NEUTRAL, iv),
            **_draw_cues(r, AUDIO_PROTOTYPES[audio_label], AUDIO_NEUTRAL, ia)}  # fmt: skip
    actor = _actor_name(seed, split, index, shift, cfg)
    actor_tag = actor + "".join(f"+{f}" for f in ("face", "voice") if f in shift)
    return {
        "id": f"{split}-{index:05d}",
        "split": split,
        "index": index,
        "clip_seed": cs,
        "label": label,
        "condition": condition,
        "video_label": video_label,
        "audio_label": audio_label,
        "actor": actor_tag,
        "cues": cues,
        "intensity": {"video": round(iv, 4), "audio": round(ia, 4)},
        "shift": sorted(shift),
        "face": _face(seed, actor, "face" in shift),
        "voice": _voice(seed, actor, "voice" in shift),
        "nuisance": _nuisance(cs, shift),
        "timing": _timing(cs, cfg.duration, cfg.max_onset),
    }


def _timing(cs: int, duration: float, max_onset: float = 0.3) -> dict:
    r = _rng(cs, "timing")
    return {"onset": r.uniform(0.0, max_onset), "speech_start": r.uniform(0.05, 0.2), "speech_end": duration - r.uniform(0.05, 0.15),
                "phase": r.uniform(0, 2 * np.pi, 3).tolist()}  # fmt: skip


# --------------------------------------------------------------------------------------------
# Video rendering (numpy, anti-aliased signed-distance shapes painted on small bounding boxes).
# --------------------------------------------------------------------------------------------


def _smooth(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


_GRIDS: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (y, x) of a size x size image, cached."""
    if size not in _GRIDS:
        y, x = np.mgrid[0:size, 0:size].astype(np.float32) + np.float32(0.5)
        _GRIDS[size] = (y, x)
    return _GRIDS[size]


class _Canvas:
    """One RGB frame; shapes are given in face-local pixel coordinates (rotated, translated)."""

    def __init__(self, bg: np.ndarray, centre: tuple[float, float], angle_deg: float):
        self.img = bg.copy()
        self.size = bg.shape[0]
        self.cx, self.cy = centre
        a = math.radians(angle_deg)
        self.cos, self.sin = math.cos(a), math.sin(a)
        y, x = _grid(self.size)
        dx, dy = x - np.float32(self.cx), y - np.float32(self.cy)
        self.xl = np.float32(self.cos) * dx + np.float32(self.sin) * dy
        self.yl = np.float32(self.cos) * dy - np.float32(self.sin) * dx

    def _local(self, x0: float, y0: float, radius: float):
        """Slice of the image around local point (x0, y0) with local coordinates of its pixels."""
        gx = self.cx + self.cos * x0 - self.sin * y0
        gy = self.cy + self.sin * x0 + self.cos * y0
        r = radius + 2
        i0, i1 = max(0, int(gy - r)), min(self.size, int(gy + r) + 2)
        j0, j1 = max(0, int(gx - r)), min(self.size, int(gx + r) + 2)
        if i0 >= i1 or j0 >= j1:
            return None
        sl = (slice(i0, i1), slice(j0, j1))
        return sl, self.xl[sl], self.yl[sl]

    def paint(self, sl, cov, colour):
        if sl is None:
            return
        region = self.img[sl]
        region += cov[..., None] * (np.asarray(colour, np.float32) - region)

    @staticmethod
    def _ellipse_cov(xl, yl, x0, y0, rx, ry, power=2.0):
        u, v = (xl - x0) * (1 / rx), (yl - y0) * (1 / ry)
        if power == 2.0:
            rr = np.sqrt(u * u + v * v)
        else:
            rr = (np.abs(u) ** power + np.abs(v) ** power) ** (1 / power)
        return np.clip(0.5 - (rr - 1) * min(rx, ry), 0, 1)

    def ellipse(self, x0, y0, rx, ry, colour, power=2.0):
        """A filled (super)ellipse; ``power`` > 2 gives a squarer outline."""
        loc = self._local(x0, y0, max(rx, ry))
        if loc is not None:
            sl, xl, yl = loc
            self.paint(sl, self._ellipse_cov(xl, yl, x0, y0, rx, ry, power), colour)

    def head(self, rx, ry, power, hairline, hair_slope, skin, hair):
        """The face (super)ellipse in skin colour with a hair cap above ``hairline`` (may slant)."""
        loc = self._local(0, 0, max(rx, ry))
        if loc is not None:
            sl, xl, yl = loc
            cov = self._ellipse_cov(xl, yl, 0, 0, rx, ry, power)
            self.paint(sl, cov, skin)
            self.paint(sl, np.minimum(cov, np.clip(hairline + hair_slope * xl - yl + 0.5, 0, 1)), hair)

    def eye(self, x0, y0, ew, eh, ir, white, iris):
        """Eye white (an ellipse of height ``eh``) with a round iris clipped to it."""
        loc = self._local(x0, y0, max(ew, eh))
        if loc is not None:
            sl, xl, yl = loc
            cov = self._ellipse_cov(xl, yl, x0, y0, ew, eh)
            self.paint(sl, cov, white)
            self.paint(sl, np.minimum(cov, self._ellipse_cov(xl, yl, x0, y0, ir, ir)), iris)

    def segment(self, p0, p1, half_width, colour):
        (x0, y0), (x1, y1) = p0, p1
        mx, my = (x0 + x1) / 2, (y0 + y1) / 2
        loc = self._local(mx, my, math.hypot(x1 - x0, y1 - y0) / 2 + half_width)
        if loc is None:
            return
        sl, xl, yl = loc
        vx, vy = x1 - x0, y1 - y0
        px, py = xl - x0, yl - y0
        t = np.clip((px * vx + py * vy) * (1 / (vx * vx + vy * vy + 1e-9)), 0, 1)
        ddx, ddy = px - t * vx, py - t * vy
        d = np.sqrt(ddx * ddx + ddy * ddy)
        self.paint(sl, np.clip(half_width + 0.5 - d, 0, 1), colour)

    def mouth(self, x0, y0, half_w, curve, open_h, asym, lip, lip_colour, inner_colour):
        loc = self._local(x0, y0, half_w + abs(curve) + abs(asym) + open_h + lip + 2)
        if loc is None:
            return
        sl, xl, yl = loc
        s = (xl - x0) / half_w
        inside = np.clip((1 - np.abs(s)) * half_w + 0.5, 0, 1)
        s2 = np.minimum(s * s, 1.0)
        centre = y0 - curve * s2 + asym * s
        h = open_h * np.sqrt(1 - s2)
        d = np.abs(yl - centre)
        self.paint(sl, np.clip(h + lip + 0.5 - d, 0, 1) * inside, lip_colour)
        if open_h > 0.4:
            self.paint(sl, np.clip(h + 0.5 - d, 0, 1) * inside, inner_colour)


def _ramp(t: np.ndarray, onset: float, length: float = 0.25) -> np.ndarray:
    return _smooth((t - onset) / length)


def render_frames(plan: dict, cfg: SynthConfig) -> np.ndarray:
    """The clip's frames, (T, H, W, 3) uint8."""
    S, n = cfg.size, max(1, round(cfg.duration * cfg.fps))
    t = np.arange(n) / cfg.fps
    f, cues, nz, tm = plan["face"], plan["cues"], plan["nuisance"], plan["timing"]
    k = _ramp(t, tm["onset"])
    late = _smooth((t - tm["onset"]) / max(cfg.duration - tm["onset"], 1e-3))
    ph = tm["phase"]
    r = _rng(plan["clip_seed"], "motion")
    jit = r.normal(0, 1, (n, 2))
    scale = S / 112.0
    dx = k * (cues["shake"] * np.sin(2 * np.pi * 2.2 * t + ph[0]) + cues["tremor"] * jit[:, 0]) * scale
    dy = (k * (cues["nod"] * np.sin(2 * np.pi * 1.6 * t + ph[1]) + cues["tremor"] * jit[:, 1])
          + late * cues["drift"]) * scale  # fmt: skip
    angle = late * cues["tilt"]

    rx = f["rx"] * S
    ry = rx * f["aspect"]
    cx0 = S / 2 + f["offset"][0] * S
    cy0 = S / 2 + 0.02 * S + f["offset"][1] * S

    # background (+ stripes when the lighting factor is shifted)
    yy, xx = _grid(S)
    bg = np.empty((S, S, 3), np.float32)
    bg[:] = np.asarray(nz["bg"], np.float32)
    bg *= (1 + 0.08 * (yy / S - 0.5))[..., None]
    if nz["stripes"]:
        bg += (nz["stripes"] * np.sign(np.sin(2 * np.pi * (xx + 0.6 * yy) / (S / 7))))[..., None]
    # lighting field: gain * cast * (1 + gradient along a direction)
    dirv = (np.cos(nz["angle"]) * (xx / S - 0.5) + np.sin(nz["angle"]) * (yy / S - 0.5)) * 2
    light = (nz["gain"] * (1 + nz["gradient"] * dirv))[..., None] * np.asarray(nz["cast"], np.float32)

    rv = _rng(plan["clip_seed"], "video_noise_pixels")
    frames = np.empty((n, S, S, 3), np.uint8)
    for i in range(n):
        e = {c: VIDEO_NEUTRAL[c] + k[i] * (cues[c] - VIDEO_NEUTRAL[c]) for c in VIDEO_CUES}
        cv = _Canvas(bg, (cx0 + dx[i], cy0 + dy[i]), angle[i])
        # hair behind the head top, face, hair cap
        cv.ellipse(0, -0.18 * ry, rx * 1.06, ry * 0.9, f["hair"], power=f["jaw"])
        cv.head(rx, ry, f["jaw"], -f["hairline"] * ry, f["hair_slope"], f["skin"], f["hair"])
        # eyes, irises, brows
        ew = 0.2 * rx * f["eye_size"]
        eh = max(0.11 * ry * f["eye_size"] * e["eye_open"], 0.6)
        ey = -0.14 * ry
        ir = min(0.55 * ew, 0.09 * ry)
        for side in (-1, 1):
            ex = side * f["eye_sep"] * rx
            cv.eye(ex, ey, ew, eh, ir, (245, 245, 240), f["iris"])
            by = ey - (0.2 + 0.09 * e["brow_raise"]) * ry
            inner = (ex - side * 0.95 * ew, by + 0.075 * ry * e["brow_tilt"])
            outer = (ex + side * 1.05 * ew, by - 0.02 * ry * e["brow_tilt"])
            cv.segment(inner, outer, f["brow_w"] * scale, f["brow"])
        # nose
        cv.segment((0, -0.02 * ry), (0.03 * rx, 0.18 * ry), 0.9 * scale, f["skin"] * 0.75)
        # mouth
        cv.mouth(0, f["mouth_y"] * ry, 0.3 * rx * f["mouth_scale"] * e["mouth_width"], 0.13 * ry * e["mouth_curve"],
                 0.17 * ry * e["mouth_open"], 0.09 * ry * e["mouth_asym"], 1.1 * scale, f["lip"], (60, 20, 25))  # fmt: skip
        img = cv.img * light
        vn = nz["video_noise"]
        if vn["kind"] == "gaussian":
            img += rv.standard_normal(img.shape, dtype=np.float32) * np.float32(vn["sigma"])
        else:
            img = _box_blur(img, vn["sigma"])
            phase = rv.uniform(0, 4)
            img += (vn["scan"] * np.sign(np.sin(np.pi * (yy + phase) / 2)))[..., None]
        frames[i] = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    return frames


def _box_blur(img: np.ndarray, amount: float) -> np.ndarray:
    """A 3x3 blur mixed in by ``amount`` (0..1)."""
    p = np.pad(img, ((1, 1), (1, 1), (0, 0)), mode="edge")
    acc = sum(p[i : i + img.shape[0], j : j + img.shape[1]] for i in range(3) for j in range(3)) / 9.0
    return img + amount * (acc - img)


# --------------------------------------------------------------------------------------------
# Audio rendering: harmonic voice with formants, syllables, prosody; nuisances added after.
# --------------------------------------------------------------------------------------------

_VOWELS = np.array(
    [[730, 1090], [530, 1840], [270, 2290], [570, 840], [300, 870], [660, 1720], [490, 1350]], float
)


def render_audio(plan: dict, cfg: SynthConfig) -> np.ndarray:
    """The clip's mono waveform at ``cfg.sr`` (float32, within [-1, 1])."""
    sr, n = cfg.sr, round(cfg.duration * cfg.sr)
    t = np.arange(n) / sr
    c, v, nz, tm = plan["cues"], plan["voice"], plan["nuisance"], plan["timing"]
    r = _rng(plan["clip_seed"], "syllables")
    t0, t1 = tm["speech_start"], tm["speech_end"]

    # syllable schedule and amplitude envelope
    env = np.zeros(n)
    bounds = []
    s = t0
    while s < t1 - 0.08:
        dur = min(r.uniform(0.8, 1.2) / c["syllable_rate"], t1 - s)
        bounds.append((s, s + dur))
        voiced = 0.78 * dur
        a = np.clip((t - s) / 0.015, 0, 1) * np.clip((s + voiced - t) / 0.04, 0, 1)
        env = np.maximum(env, a * r.uniform(0.8, 1.0))
        s += dur
    env = _smooth(env)

    # pitch contour (semitones relative to the actor's base), vibrato, micro-prosody
    u = np.clip((t - t0) / (t1 - t0), 0, 1)
    st = (c["pitch_st"] + nz["pitch_jitter_st"] + c["pitch_slope"] * (u - 0.5)
          + c["pitch_arch"] * (1 - (2 * u - 1) ** 2 - 2 / 3) + c["vibrato"] * np.sin(2 * np.pi * 6.5 * t))  # fmt: skip
    micro = np.zeros(n)
    for a, b in bounds:
        micro[(t >= a) & (t < b)] = r.normal(0, 0.35)
    st = st + np.convolve(micro, np.ones(160) / 160, mode="same")
    f0 = v["f0"] * 2 ** (st / 12)
    phase = 2 * np.pi * np.cumsum(f0) / sr

    # harmonic amplitudes at a 5 ms control rate: spectral tilt * formant resonances of the vowel
    hop = 80
    tc = np.arange(0, n, hop)
    f0c = f0[tc]
    vow = np.zeros((len(tc), 2))
    for j, (a, b) in enumerate(bounds):
        vow[(tc / sr >= a)] = _VOWELS[r.integers(len(_VOWELS))] * v["formant"]
    vow[tc / sr < t0] = _VOWELS[0] * v["formant"]
    K = int(7000 // f0.max())
    kk = np.arange(1, K + 1)[:, None]
    fk = kk * f0c[None]
    F3 = 2600 * v["formant"]
    gain = (kk ** (v["tilt_db"] / 6.02)) * (
        0.25 + 1.6 * np.exp(-0.5 * ((fk - vow[None, :, 0]) / 110) ** 2)
        + 1.2 * np.exp(-0.5 * ((fk - vow[None, :, 1]) / 150) ** 2) + 0.5 * np.exp(-0.5 * ((fk - F3) / 220) ** 2)
    )  # fmt: skip
    gain[fk > 7200] = 0.0
    # sum of harmonics: sin(k*phase) by the Chebyshev recurrence, gains interpolated linearly
    pos = np.arange(n) / hop
    i0 = np.minimum(pos.astype(int), len(tc) - 1)
    i1 = np.minimum(i0 + 1, len(tc) - 1)
    w = pos - i0
    two_cos = 2 * np.cos(phase)
    s_prev, s_cur = np.zeros(n), np.sin(phase)
    voice = np.zeros(n)
    for k in range(K):
        voice += (gain[k, i0] * (1 - w) + gain[k, i1] * w) * s_cur
        s_prev, s_cur = s_cur, two_cos * s_cur - s_prev
    voice /= np.sqrt(np.mean(voice[env > 0.5] ** 2) + 1e-9) if np.any(env > 0.5) else 1.0

    # roughness: periodic amplitude modulation (no broadband noise can imitate it)
    if c["rough_depth"] > 0 and c["rough_rate"] > 0:
        voice *= 1 - c["rough_depth"] * 0.5 * (1 + np.sin(2 * np.pi * c["rough_rate"] * t))
    level = 0.07 * 10 ** ((c["loudness_db"] + v["level_db"]) / 20)
    y = level * env * voice

    # nuisances
    an = nz["audio_noise"]
    rn = _rng(plan["clip_seed"], "audio_noise_samples")
    ref = 0.07  # the neutral voice level, so SNR does not depend on the emotion's loudness
    if an["kind"] == "coloured":
        if an["snr_db"] < 90:
            y = y + ref * 10 ** (-an["snr_db"] / 20) * _coloured_noise(rn, n, an["colour"])
    else:
        y = _reverb(y, rn, sr, an["rt60"], an["wet"])
        hum = sum(np.sin(2 * np.pi * an["hum_hz"] * h * t + rn.uniform(0, 6.3)) / h for h in range(1, 7))
        y = y + ref * 10 ** (-an["hum_snr_db"] / 20) * hum / np.sqrt(np.mean(hum**2))
    return np.clip(y, -0.99, 0.99).astype(np.float32)


def _coloured_noise(r: np.random.Generator, n: int, colour: float) -> np.ndarray:
    """Unit-RMS noise with power spectrum ~ 1/f**colour (0 white, 1 pink, 2 brown)."""
    spec = np.fft.rfft(r.normal(0, 1, n))
    f = np.fft.rfftfreq(n)
    f[0] = f[1]
    x = np.fft.irfft(spec / f ** (colour / 2), n)
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def _reverb(y: np.ndarray, r: np.random.Generator, sr: int, rt60: float, wet: float) -> np.ndarray:
    m = int(rt60 * sr)
    ir = r.normal(0, 1, m) * np.exp(-6.9 * np.arange(m) / m)
    ir /= np.sqrt(np.sum(ir**2))
    n = len(y) + m
    nfft = 1 << (n - 1).bit_length()
    wet_sig = np.fft.irfft(np.fft.rfft(y, nfft) * np.fft.rfft(ir, nfft), nfft)[: len(y)]
    return (1 - wet) * y + wet * wet_sig


# --------------------------------------------------------------------------------------------
# Writing clips and manifests.
# --------------------------------------------------------------------------------------------


def write_mp4(
    path: str | os.PathLike, frames: np.ndarray, audio: np.ndarray, fps: int, sr: int, crf: int = 18
) -> None:
    """Write an H.264 (+ AAC mono) mp4 atomically (temporary name, then rename)."""
    import av

    path = Path(path)
    tmp = path.with_name(path.stem + ".part.mp4")
    with av.open(str(tmp), "w") as c:
        vs = c.add_stream("libx264", rate=fps)
        vs.width, vs.height = frames.shape[2], frames.shape[1]
        vs.pix_fmt = "yuv420p"
        vs.options = {"preset": "ultrafast", "crf": str(crf), "bf": "0", "g": str(max(1, len(frames)))}
        vs.thread_count = 1
        ast = c.add_stream("aac", rate=sr, layout="mono")
        ast.bit_rate = 64000
        ast.options = {"aac_coder": "fast"}
        for fr in frames:
            for p in vs.encode(av.VideoFrame.from_ndarray(fr, format="rgb24")):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
        step, pts = 1024, 0
        for i in range(0, len(audio), step):
            chunk = np.ascontiguousarray(audio[i : i + step][None])
            af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            af.sample_rate, af.pts = sr, pts
            pts += chunk.shape[1]
            for p in ast.encode(af):
                c.mux(p)
        for p in ast.encode():
            c.mux(p)
    os.replace(tmp, path)


def _meta(plan: dict) -> dict:
    meta = {k: plan[k] for k in ("condition", "actor", "video_label", "audio_label", "cues", "intensity")}
    meta["seed"] = plan["clip_seed"]
    meta["index"] = plan["index"]
    nz = plan["nuisance"]
    meta["nuisance"] = {
        "lighting_gain": round(nz["gain"], 4), "lighting_gradient": round(nz["gradient"], 4),
        "video_noise": nz["video_noise"]["kind"], "audio_noise": nz["audio_noise"]["kind"],
        "f0_hz": round(plan["voice"]["f0"], 2), "pitch_jitter_st": round(nz["pitch_jitter_st"], 4),
    }  # fmt: skip
    if plan["shift"]:
        meta["shift"] = plan["shift"]
    if plan["split"] == "cold_start":
        meta["reasoning"] = reasoning_text(plan["label"], plan["condition"], plan["cues"])
    return meta


def _make_clip(job: tuple) -> dict:
    """Worker: plan, render and write one clip (skipped when the file exists); returns the Clip dict."""
    out_dir, seed, split, index, shift, cfg_d, resume = job
    cfg = SynthConfig(**cfg_d)
    plan = plan_clip(seed, split, index, shift, cfg)
    path = Path(out_dir) / "media" / split / f"{plan['id']}.mp4"
    if not (resume and path.is_file()):
        write_mp4(path, render_frames(plan, cfg), render_audio(plan, cfg), cfg.fps, cfg.sr, cfg.crf)
    return Clip(id=plan["id"], video=str(path), label=plan["label"], split=split, dataset="synthemo",
                meta=_meta(plan)).to_dict()  # fmt: skip


def _prepare_folder(folder: Path, params: dict) -> bool:
    """Create ``folder``; return True when its existing files were made with ``params`` (resume)."""
    folder.mkdir(parents=True, exist_ok=True)
    pfile = folder / "params.json"
    if pfile.is_file():
        try:
            same = json.loads(pfile.read_text()) == params
        except json.JSONDecodeError:
            same = False
        if same:
            return True
    for old in folder.glob("*.mp4"):  # made with other parameters: regenerate
        old.unlink()
    pfile.write_text(json.dumps(params, sort_keys=True))
    return False


def _default_workers() -> int:
    try:
        return max(1, min(len(os.sched_getaffinity(0)), 8))
    except AttributeError:
        return max(1, min(os.cpu_count() or 1, 8))


def generate_split(
    out_dir: str | os.PathLike,
    split: str,
    n: int,
    seed: int = 0,
    shift: Iterable[str] | None = None,
    cfg: SynthConfig | None = None,
    workers: int | None = None,
    resume: bool = True,
    progress: bool = False,
) -> list[Clip]:
    """Generate ``n`` clips of ``split`` under ``out_dir/media/<split>/``; returns their Clip records.

    ``shift`` lists the OOD factors to shift (default: all of them for ``test_ood``, none otherwise).
    """
    cfg = cfg or SynthConfig()
    shift = frozenset(OOD_FACTORS if (shift is None and split == "test_ood") else (shift or ()))
    if n <= 0:
        return []
    out_dir = Path(out_dir).resolve()
    params = dict(version=GENERATOR_VERSION, seed=seed, shift=sorted(shift), **asdict(cfg))
    resume = _prepare_folder(out_dir / "media" / split, params) and resume
    jobs = [(str(out_dir), seed, split, i, tuple(sorted(shift)), asdict(cfg), resume) for i in range(n)]
    workers = workers or _default_workers()
    if workers <= 1 or n < 8:
        it = map(_make_clip, jobs)
        results = _progress(it, n, split, progress)
    else:
        ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        with ctx.Pool(workers) as pool:
            results = _progress(pool.imap(_make_clip, jobs, chunksize=4), n, split, progress)
    return [Clip(**d) for d in results]


def _progress(it, n: int, split: str, show: bool) -> list:
    if not show:
        return list(it)
    from tqdm.auto import tqdm

    return list(tqdm(it, total=n, desc=f"synthemo {split}", unit="clip"))


def generate(
    out_dir: str | os.PathLike,
    n_train: int = 1400,
    n_cold_start: int = 140,
    n_test: int = 210,
    seed: int = 0,
    duration: float = 1.5,
    fps: int = 8,
    size: int = 112,
    workers: int | None = None,
    ood_shift: Sequence[str] = OOD_FACTORS,
    resume: bool = True,
    progress: bool = False,
    **difficulty,
) -> Path:
    """Generate SynthEmo under ``out_dir`` and return the path of ``out_dir/manifest.jsonl``.

    Args:
        n_train, n_cold_start: clips in ``train`` and ``cold_start``.
        n_test: clips in each of ``test_id`` and ``test_ood``.
        seed: master seed; clip ``i`` of a split is seeded by (seed, split, i).
        duration, fps, size: clip length (s), frame rate, frame size (square).
        workers: processes (default: the CPUs available).
        ood_shift: the OOD factors ``test_ood`` shifts (default all of :data:`OOD_FACTORS`).
        resume: keep existing files made with the same parameters.
        difficulty: other :class:`SynthConfig` fields, e.g. ``min_intensity=0.8, max_onset=0.0``
            (stronger, earlier expressions: an easier set).
    """
    cfg = SynthConfig(duration=duration, fps=fps, size=size, **difficulty)
    clips: list[Clip] = []
    for split, n in (
        ("train", n_train),
        ("cold_start", n_cold_start),
        ("test_id", n_test),
        ("test_ood", n_test),
    ):
        shift = ood_shift if split == "test_ood" else ()
        clips += generate_split(out_dir, split, n, seed, shift, cfg, workers, resume, progress)
    return write_manifest(clips, Path(out_dir) / "manifest.jsonl")


def summarize(manifest_path: str | os.PathLike):
    """Clip counts by split x condition (rows) and label (columns), with totals."""
    import pandas as pd

    clips = read_manifest(manifest_path, check_media=False)
    df = pd.DataFrame(
        [{"split": c.split, "condition": c.meta.get("condition"), "label": c.label} for c in clips]
    )
    if df.empty:
        return pd.DataFrame(columns=list(LABELS) + ["total"])
    table = pd.crosstab([df["split"], df["condition"]], df["label"])
    table = table.reindex(columns=[lab for lab in LABELS if lab in table.columns])
    order = {s: i for i, s in enumerate(SPLITS)}
    table = table.sort_index(
        key=lambda idx: idx.map(lambda v: order.get(v, CONDITIONS.index(v) if v in CONDITIONS else 99))
    )
    table["total"] = table.sum(axis=1)
    return table


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def add_synth_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder (manifest.jsonl + media/)")
    parser.add_argument("--n-train", type=int, default=1400, help="clips in the train split (default 1400)")
    parser.add_argument(
        "--n-cold-start", type=int, default=140, help="clips with reasoning text (default 140)"
    )
    parser.add_argument(
        "--n-test", type=int, default=210, help="clips in each of test_id and test_ood (default 210)"
    )
    parser.add_argument("--seed", type=int, default=0, help="master seed (default 0)")
    parser.add_argument("--duration", type=float, default=1.5, help="clip length in seconds (default 1.5)")
    parser.add_argument("--fps", type=int, default=8, help="video frame rate (default 8)")
    parser.add_argument("--size", type=int, default=112, help="frame size in pixels (default 112)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all CPUs)")
    parser.add_argument("--no-resume", action="store_true", help="regenerate files that already exist")


def cli_synth(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    path = generate(args.out, args.n_train, args.n_cold_start, args.n_test, seed=args.seed, duration=args.duration,
                    fps=args.fps, size=args.size, workers=args.workers, resume=not args.no_resume,
                    progress=sys.stderr.isatty())  # fmt: skip
    table = summarize(path)
    print(table.to_string())
    print(
        f"wrote {int(table['total'].sum()) if len(table) else 0} clips and {path} in {time.perf_counter() - t0:.1f} s"
    )
    return 0


__all__ = [
    "AUDIO_CUES",
    "CONDITIONS",
    "CUE_LEXICON",
    "LABELS",
    "OOD_FACTORS",
    "SPLITS",
    "VIDEO_CUES",
    "VOCABULARY",
    "SynthConfig",
    "add_synth_args",
    "cli_synth",
    "clip_seed",
    "corpus",
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
