"""Omni model layer: the tiny Qwen2.5-Omni thinker, loading real checkpoints, prompts, inputs, scoring.

model, processor = build_tiny()                       # or load_model("path/to/Qwen2.5-Omni-3B")
batch = build_inputs(processor, media, {"video"})     # modality left out = block and tensors absent
texts = generate(model, processor, media, ALL)
logp = score_labels(model, processor, media, ALL, labels=DFEW7)   # (n_clips, n_labels)
"""

from omnibench.model.generation import generate, score_labels
from omnibench.model.inputs import (
    ALL,
    DEFAULT_PROMPT,
    NONE,
    available_modalities,
    build_inputs,
    parse_modalities,
    render_prompt,
)
from omnibench.model.loading import ModelLoadError, load_model, save_model
from omnibench.model.tiny import TinySizes, build_tiny

__all__ = [
    "ALL",
    "DEFAULT_PROMPT",
    "NONE",
    "ModelLoadError",
    "TinySizes",
    "available_modalities",
    "build_inputs",
    "build_tiny",
    "generate",
    "load_model",
    "parse_modalities",
    "render_prompt",
    "save_model",
    "score_labels",
]
