"""SynthEmo's per-clip plan: configuration, splits, seeding, actors, cue draws and nuisances.

Every random choice about a clip is made here, before a pixel or a sample exists, from streams
seeded by ``(seed, split, index)`` and a factor name (:func:`_rng`).  Shifting one OOD factor
therefore changes only that factor's draws, clips can be made in any order and in parallel, and a
plan is cheap to recompute (the tests and the attribution read plans without rendering).  The
renderers (:mod:`~omnibench.data.synth.video`, :mod:`~omnibench.data.synth.audio`) draw only
per-clip pixel and sample noise, from their own streams of the same clip seed.

Splits are one table (:data:`_SPLIT_TABLE`): a split's name, its seed code and the OOD factors it
shifts by default; ``test_actors`` (unseen actors only) is such a row.  ``test_draw`` shifts nothing:
it is drawn with a different master seed (:data:`DRAW_SPLIT`, ``generate(n_draw=..., draw_seed=...)``), a
new world of the same distribution -- the actors' faces and voices and every clip drawn afresh.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from omnibench.data.synth.cues import (
    AUDIO_NEUTRAL,
    AUDIO_PROTOTYPES,
    CONDITIONS,
    LABELS,
    VIDEO_NEUTRAL,
    VIDEO_PROTOTYPES,
)

#: factors that ``test_ood`` shifts (all of them by default); see the package docstring
OOD_FACTORS: tuple[str, ...] = ("actors", "face", "lighting", "video_noise", "voice", "audio_noise")
#: split -> (seed code, OOD factors shifted by default), in manifest order; the codes are part of the
#: seeds, so a split keeps its code forever (a new split takes a new one).  ``test_actors`` shifts the
#: actors only: identities never seen in training (``o00``.., their own face and voice draws) taken from
#: the *training* ranges of face shape, colours and voice, with the training nuisances.  It separates
#: "learned the cues" from "learned the actors", which ``test_id`` (the training actors) cannot.
_SPLIT_TABLE: dict[str, tuple[int, tuple[str, ...]]] = {
    "train": (11, ()),
    "cold_start": (12, ()),
    "test_id": (13, ()),
    "test_actors": (15, ("actors",)),
    "test_ood": (14, OOD_FACTORS),
    "test_draw": (16, ()),
}
#: the split drawn with its own master seed (``generate``'s ``draw_seed``, never a training seed): the
#: same distribution as ``test_id`` but new actors' faces and voices and new clips, so a score on it says
#: whether a model learned SynthEmo or the one draw it was trained on
DRAW_SPLIT = "test_draw"
#: the evaluation splits, in table order (every split but the two training ones)
TEST_SPLITS: tuple[str, ...] = tuple(s for s in _SPLIT_TABLE if s not in ("train", "cold_start"))
SPLITS: tuple[str, ...] = tuple(_SPLIT_TABLE)


def default_shift(split: str) -> tuple[str, ...]:
    """The OOD factors ``split`` shifts when none are given (none for a split not in the table)."""
    return _SPLIT_TABLE[split][1] if split in _SPLIT_TABLE else ()


# --------------------------------------------------------------------------------------------
# Per-clip jitter (std) of each cue and the range it is clipped to.
# A clip's cue = neutral + intensity * (prototype - neutral) + jitter; intensity ~ U(0.5, 1).
# --------------------------------------------------------------------------------------------

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
# Configuration, seeding, actors and the per-clip plan.
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
        default=0.5,
        metadata={"help": "cue intensity ~ U(min_intensity, max_intensity) per modality (1 = prototype)"},
    )
    max_intensity: float = field(default=1.0, metadata={"help": "upper end of the cue intensity draw"})
    max_onset: float = field(
        default=0.3, metadata={"help": "expression onset ~ U(0, max_onset) seconds (then a 0.25 s ramp)"}
    )


def _rng(*keys: int | str) -> np.random.Generator:
    """A generator seeded by a tuple of ints/strings (strings hashed with crc32, stable across runs)."""
    ints = [k if isinstance(k, int) else zlib.crc32(k.encode()) for k in keys]
    return np.random.default_rng([int(i) & 0xFFFFFFFF for i in ints])


def _smooth(x):
    """Smoothstep of ``x`` clipped to [0, 1]: the ramp of expression onsets and syllable envelopes."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def clip_seed(seed: int, split: str, index: int) -> int:
    """The per-clip seed derived from (seed, split, index)."""
    code = _SPLIT_TABLE[split][0] if split in _SPLIT_TABLE else zlib.crc32(split.encode())
    ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, code, index])
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
        hair = np.array(
            [[170, 70, 40], [150, 150, 150], [235, 225, 200], [70, 45, 90]][(i + i // 4) % 4], float
        )
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
