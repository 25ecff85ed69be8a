"""Cue lexicons by dataset family: the words a reasoning uses for what it saw and what it heard.

One concept, two readers: the faithfulness of the stated attribution
(:mod:`omnibench.attribution.cues`: the stated video share is the share of video cue words among the
cue words a reasoning cites) and the grounding reward (:func:`omnibench.rewards.grounding_reward`: a
reasoning that cites a cue of a modality the input lacked earns nothing). Both read
:data:`LEXICONS`, one lexicon (``{"video": words, "audio": words}``) per dataset family:

``synthemo``
    SynthEmo's cue vocabulary (:data:`omnibench.data.synth.cues.CUE_LEXICON`: the words of its cue
    phrases, "smiling", "brows", "pitch", "syllables", ...). No word is in both modalities, and none is
    in the sentences saying a modality shows nothing ("The face is calm and still.", "The voice is
    plain and steady.").
``real``
    faces and voices in the wild (DFEW, MAFW, MER, CREMA-D, RAVDESS, MELD): the words a reasoning
    uses when it describes what it saw or heard ("face", "smile", "gaze", "voice", "tone",
    "shouting", ...). Deliberately small and literal.

Each reader's default takes the families it needs (:func:`cue_lexicon` merges them), and the two
differ on purpose:

* faithfulness (:data:`FAITHFULNESS_FAMILIES`: SynthEmo's) counts *evidence*: "The voice is plain and
  steady" says the voice shows nothing, so "voice" must not count as an audio cue there, or an
  explanation from the face alone would state an audio share;
* grounding (:data:`GROUNDING_FAMILIES`: SynthEmo's and the real-data words) penalises *any*
  description of a modality the input lacked, "the voice is plain" on a video-only input included.

A caller passes its own lexicon to either reader (``attribute(..., lexicon=...)``; a recipe's
``reward_options: {grounding: {lexicon: {video: [...], audio: [...]}}}``); a new dataset family is a
new entry of :data:`LEXICONS`. Imports nothing but SynthEmo's cue language (no numpy, no renderer).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from omnibench.data.synth.cues import CUE_LEXICON

__all__ = ["FAITHFULNESS_FAMILIES", "GROUNDING_FAMILIES", "LEXICONS", "cue_lexicon"]

#: dataset family -> {"video": cue words, "audio": cue words}
LEXICONS: dict[str, dict[str, tuple[str, ...]]] = {
    "synthemo": {mod: tuple(words) for mod, words in CUE_LEXICON.items()},
    "real": {
        "video": ("face", "facial", "expression", "smile", "smiling", "smiles", "frown", "frowning", "frowns",
                  "brow", "brows", "eyebrow", "eyebrows", "eyes", "eye", "gaze", "stare", "mouth", "lips",
                  "grimace", "tears", "crying", "nod", "nodding", "head"),
        "audio": ("voice", "vocal", "tone", "pitch", "loud", "loudly", "loudness", "volume", "tremble", "trembling",
                  "shaky", "shout", "shouting", "whisper", "whispering", "sigh", "sighs", "intonation", "speech",
                  "speaking", "sob", "sobbing", "laugh", "laughing"),
    },
}
#: the families the stated shares of faithfulness count by default (why: module docstring)
FAITHFULNESS_FAMILIES: tuple[str, ...] = ("synthemo",)
#: the families the grounding reward checks by default (why: module docstring)
GROUNDING_FAMILIES: tuple[str, ...] = ("synthemo", "real")


def cue_lexicon(*families: str, lexicons: Mapping[str, Mapping[str, Sequence[str]]] = LEXICONS) -> dict[str, tuple]:
    """The cue words per modality of ``families`` merged: ``{"video": (...), "audio": (...)}``, each
    modality's words sorted, each once."""
    unknown = [f for f in families if f not in lexicons]
    if unknown or not families:
        raise KeyError(f"cue lexicon families {unknown or '(none given)'}; known: {sorted(lexicons)}")
    mods = dict.fromkeys(m for f in families for m in lexicons[f])
    return {m: tuple(sorted({w for f in families for w in lexicons[f].get(m, ())})) for m in mods}
