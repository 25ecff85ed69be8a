"""The parts of an omni model, found the same way through every wrapper.

Code that works on a model's parts (encoder sharing, the shared prefill, label scoring, 3-D positions,
tower attention, perception pre-training, GRPO) receives the model in many wrappings: the thinker
itself (``Qwen2_5OmniThinkerForConditionalGeneration``, the tiny model and our checkpoints), a PEFT
``PeftModel`` (``base_model.model.…``), DDP / accelerate (``.module``), a full Qwen2.5-Omni
(``.thinker``). Whatever the wrapping, the parts sit in one module, the thinker's inner model
(``Qwen2_5OmniThinkerModel`` / ``Qwen3OmniMoeThinkerModel``): it holds the two towers as its
submodules ``visual`` and ``audio_tower``, owns ``get_video_features`` / ``get_audio_features`` (and
calls them in its forward), computes the M-RoPE positions (``get_rope_index``) and keeps the
``rope_deltas`` of the last prompt forward.

So there is one rule, :func:`thinker`: the module that has ``visual`` and ``audio_tower`` as
registered submodules -- the model itself, the module one ``.model`` away (the usual case, no walk),
else the first such module in ``model.modules()`` order. "Registered" matters: PEFT's wrappers
forward unknown attributes to the wrapped model, so ``getattr(peft_model, "visual")`` answers too,
but state set on the wrapper (``rope_deltas``, the encoder-sharing switches) would never reach the
module whose forward reads it. :func:`vision_tower`, :func:`audio_tower` and :func:`towers` are that
module's towers. A model without towers (a text-only language model) has no thinker: every function
returns None (``towers``: an empty list), and callers leave such a model alone.

``family`` restricts :func:`thinker` to one thinker class, for code written against that class's
outputs (:data:`QWEN2_5_THINKER`: encoder sharing and the tiny model's perception pre-training
follow Qwen2.5-Omni's ``get_video_features`` / ``get_audio_features``).
"""

from __future__ import annotations

import torch

__all__ = ["QWEN2_5_THINKER", "audio_tower", "thinker", "towers", "vision_tower"]

#: class name of Qwen2.5-Omni's thinker inner model (the tiny model's, and the 3B / 7B releases')
QWEN2_5_THINKER = "Qwen2_5OmniThinkerModel"


def _owns_towers(module) -> bool:
    children = getattr(module, "_modules", None) or {}
    return isinstance(children.get("visual"), torch.nn.Module) and isinstance(children.get("audio_tower"),
                                                                              torch.nn.Module)


def thinker(model, family: str | None = None):
    """The thinker's inner model inside ``model`` (any wrapper), or None when it has none.

    ``family``: the class name the thinker must have (e.g. :data:`QWEN2_5_THINKER`); another class
    gives None."""
    if not isinstance(model, torch.nn.Module):
        return None
    found = None
    for candidate in (model, model._modules.get("model")):  # the thinker itself, or one attribute away
        if candidate is not None and _owns_towers(candidate):
            found = candidate
            break
    else:
        found = next((m for m in model.modules() if _owns_towers(m)), None)
    if found is not None and family is not None and type(found).__name__ != family:
        return None
    return found


def vision_tower(model):
    """The vision tower (``visual``) of ``model``'s thinker, or None."""
    inner = thinker(model)
    return None if inner is None else inner.visual


def audio_tower(model):
    """The audio tower (``audio_tower``) of ``model``'s thinker, or None."""
    inner = thinker(model)
    return None if inner is None else inner.audio_tower


def towers(model) -> list:
    """``[vision tower, audio tower]`` of ``model``'s thinker; ``[]`` for a model without towers."""
    inner = thinker(model)
    return [] if inner is None else [inner.visual, inner.audio_tower]
