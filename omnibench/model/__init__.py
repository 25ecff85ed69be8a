"""The generic omni model layer: loading real checkpoints (or a saved tiny thinker), prompts, inputs, scoring.

The embedded tiny thinker (config, tokenizer, perception pre-training) is its own package,
:mod:`omnibench.tiny`; nothing here imports it.

model, processor = load_model("path/to/Qwen2.5-Omni-3B")   # or omnibench.tiny.build_tiny()
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

__all__ = [
    "ALL",
    "DEFAULT_PROMPT",
    "NONE",
    "ModelLoadError",
    "available_modalities",
    "build_inputs",
    "generate",
    "load_model",
    "parse_modalities",
    "render_prompt",
    "save_model",
    "score_labels",
]
