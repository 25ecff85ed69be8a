"""SynthEmo's cue language: what the clips express and the words used to say it.

This is the part of SynthEmo that other code reads without rendering anything: the tokenizer is
trained on :func:`corpus` / :data:`VOCABULARY`, the reasoning-cue attribution counts the words of
:data:`CUE_LEXICON`, perception pre-training learns :func:`description_text`, and the cold_start
reasoning is :func:`reasoning_text`.  So it imports nothing but the label set (no numpy, no
renderers): importing it is cheap and pulls in none of :mod:`~omnibench.data.synth.video`,
:mod:`~omnibench.data.synth.audio` or PyAV.

A clip's cue values are ``neutral + intensity * (prototype - neutral) + jitter`` (drawn in
:mod:`~omnibench.data.synth.plan`); a cue is *present* in the text when it deviates from its neutral
value by at least :data:`PHRASE_THRESHOLD`, and then it is named by its phrase.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from omnibench.labels import DFEW7

LABELS: tuple[str, ...] = DFEW7
#: evidence conditions: face and voice agree, only the face informs, only the voice informs
CONDITIONS: tuple[str, ...] = ("both", "video", "audio")

# --------------------------------------------------------------------------------------------
# Cues: the neutral value and the per-emotion prototypes (full intensity).
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


def reasoning_text(label: str, condition: str, cues: dict[str, float],
                   modalities: Sequence[str] = ("video", "audio")) -> str:
    """The cold_start explanation: only the informative modality's present cues are cited.

    ``modalities``: what the example shows the model. With one of the two removed (modality dropout),
    the reasoning speaks of the one kept only -- it never describes a face or a voice the input lacks
    (the grounding reward penalises exactly that) -- and concludes from it."""
    mods = set(modalities)
    if not mods <= {"video", "audio"} or not mods:
        raise ValueError(f"reasoning_text: modalities must be a non-empty subset of video, audio; got {modalities!r}")
    v = present_cues(cues, "video", top=2 if condition == "both" else 3)
    a = present_cues(cues, "audio", top=2 if condition == "both" else 3)
    if label == "neutral":
        plain = [t for m, t in (("video", _T_FACE_PLAIN), ("audio", _T_VOICE_PLAIN)) if m in mods]
        return _think([*plain, _T_NEUTRAL.format(label=label)], label)
    face = _T_FACE_SHOWS.format(cues=_join(v)) if v else _T_FACE_FAINT
    voice = _T_VOICE_HAS.format(cues=_join(a)) if a else _T_VOICE_FAINT
    if mods == {"video"}:  # the voice was removed: the face alone, whatever the condition
        return _think([face if condition != "audio" else _T_FACE_PLAIN, _T_FACE_ONLY.format(label=label)], label)
    if mods == {"audio"}:
        return _think([voice if condition != "video" else _T_VOICE_PLAIN, _T_VOICE_ONLY.format(label=label)], label)
    if condition == "both":
        return _think([face, voice, _T_BOTH.format(label=label)], label)
    if condition == "video":
        return _think([face, _T_VOICE_PLAIN, _T_FACE_ONLY.format(label=label)], label)
    return _think([_T_FACE_PLAIN, voice, _T_VOICE_ONLY.format(label=label)], label)


def description_text(cues: dict[str, float], top: int = 3) -> str:
    """What the face and the voice show, with no emotion named: the text the tiny base model learns to
    say before any emotion training (:mod:`omnibench.tiny.perception`). Every modality is described
    by its ``top`` present cues, or as calm / plain when none passes its threshold."""
    v, a = present_cues(cues, "video", top=top), present_cues(cues, "audio", top=top)
    face = _T_FACE_SHOWS.format(cues=_join(v)) if v else _T_FACE_PLAIN
    voice = _T_VOICE_HAS.format(cues=_join(a)) if a else _T_VOICE_PLAIN
    return f"{face} {voice}"
