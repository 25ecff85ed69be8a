"""A small byte-level BPE tokenizer built locally, with the Qwen2.5-Omni special tokens and chat template.

The tiny model needs a tokenizer that (1) knows every control token the Qwen2.5-Omni processor and
model look up (``<|im_start|>``, ``<|AUDIO|>``, ``<|vision_bos|>``, ...), (2) writes the SynthEmo
reasoning texts and the R1-Omni prompt in few tokens (sequence length is what a CPU pays for), and
(3) makes each emotion label a single token inside ``<answer>label</answer>``, so that label scoring
and the accuracy reward see one decision per clip.

The BPE is trained on a small corpus: the R1-Omni prompt, the SynthEmo reasoning texts and their
vocabulary (:mod:`omnibench.data.synth.cues`, the cue language alone: no renderer is imported), the
labels and a list of plain face/voice words (:data:`CUE_WORDS`).  The trainer merges until the
corpus has no pair left, so with the default cap every word of that corpus ends up a single token.
``<think>``, ``</think>``, ``<answer>`` and ``</answer>`` are added (non-special) tokens: they are
single tokens and survive ``decode(skip_special_tokens=True)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from omnibench.data.synth import cues

#: Qwen2.5-Omni control tokens, in the order they get ids (0, 1, 2, ...). ``<|endoftext|>`` pads.
SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|AUDIO|>",
    "<|audio_bos|>",
    "<|audio_eos|>",
    "<|vision_bos|>",
    "<|vision_eos|>",
    "<|vision_pad|>",
    "<|IMAGE|>",
    "<|VIDEO|>",
)
#: named model-specific tokens the Qwen2.5-Omni processor reads from the tokenizer (``tokenizer.audio_token`` ...)
NAMED_TOKENS: dict[str, str] = {
    "image_token": "<|IMAGE|>",
    "audio_token": "<|AUDIO|>",
    "video_token": "<|VIDEO|>",
    "vision_bos_token": "<|vision_bos|>",
    "vision_eos_token": "<|vision_eos|>",
    "audio_bos_token": "<|audio_bos|>",
    "audio_eos_token": "<|audio_eos|>",
}
#: reasoning / answer tags: single, decodable (non-special) tokens
TAG_TOKENS: tuple[str, ...] = ("<think>", "</think>", "<answer>", "</answer>")

#: Qwen2.5-Omni style chat template: a content list of {"type": "video"|"audio"|"image"|"text"} parts
#: becomes ``<|vision_bos|><|VIDEO|><|vision_eos|>``, ``<|audio_bos|><|AUDIO|><|audio_eos|>``, ... in order.
#: Unlike Qwen's template it adds no default system message (shorter sequences for the tiny model).
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{%- if message['content'] is string -%}{{ message['content'] }}"
    "{%- else -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'video' -%}{{ '<|vision_bos|><|VIDEO|><|vision_eos|>' }}"
    "{%- elif part['type'] == 'audio' -%}{{ '<|audio_bos|><|AUDIO|><|audio_eos|>' }}"
    "{%- elif part['type'] == 'image' -%}{{ '<|vision_bos|><|IMAGE|><|vision_eos|>' }}"
    "{%- elif part['type'] == 'text' -%}{{ part['text'] }}"
    "{%- endif -%}{%- endfor -%}{%- endif -%}"
    "{{ '<|im_end|>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\n' }}{%- endif -%}"
)

#: face and voice words trained alongside the SynthEmo corpus (plain words a prompt or a real-data
#: reasoning text may use, whether or not SynthEmo's phrases do)
CUE_WORDS: tuple[str, ...] = (
    "face", "mouth", "smile", "smiling", "corners", "lips", "brows", "eyes", "head", "raised", "lowered",
    "furrowed", "knitted", "wide", "narrowed", "open", "closed", "nodding", "shaking", "trembling", "still",
    "voice", "pitch", "tone", "volume", "high", "low", "rising", "falling", "loud", "quiet", "soft", "fast",
    "slow", "syllables", "harsh", "rough", "steady", "plain", "calm", "melody", "the", "a", "and", "has",
    "shows", "looks", "sounds", "is", "agree", "carries", "emotion", "no", "cue", "stands", "out",
)  # fmt: skip


def _synth_corpus() -> list[str]:
    """SynthEmo's reasoning texts and vocabulary."""
    return list(cues.corpus()) + [" ".join(cues.VOCABULARY)]


def default_corpus(labels: Sequence[str], prompt: str) -> list[str]:
    """The texts the tiny tokenizer is trained on (weighted so labels and prompt words merge first)."""
    answer_lines = ["<answer>" + label + "</answer>" for label in labels]
    return (
        _synth_corpus() * 4
        + [prompt] * 4
        + [" ".join(CUE_WORDS)] * 2
        + [" ".join(labels), " ".join(label.capitalize() for label in labels)] * 10
        + answer_lines * 10
        + ["system user assistant"] * 4
    )


def build_tokenizer(
    labels: Sequence[str],
    prompt: str,
    vocab_size: int = 1024,
    corpus: Iterable[str] | None = None,
) -> PreTrainedTokenizerFast:
    """Train the byte-level BPE and wrap it as a transformers tokenizer with the Qwen control tokens.

    ``vocab_size`` is a cap: training stops earlier once the corpus has no pair left to merge.
    Raises ``ValueError`` if a label does not come out as one token inside ``<answer>label</answer>``.
    """
    texts = list(corpus) if corpus is not None else default_corpus(labels, prompt)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer)
    bpe.add_tokens([AddedToken(t, normalized=False, special=False) for t in TAG_TOKENS])
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        padding_side="left",
        extra_special_tokens=dict(NAMED_TOKENS),
        chat_template=CHAT_TEMPLATE,
        model_max_length=32768,
    )
    check_label_tokens(tok, labels)
    return tok


def check_label_tokens(tokenizer, labels: Sequence[str]) -> None:
    """Raise ``ValueError`` unless ``<answer>label</answer>`` is exactly 3 tokens for every label."""
    bad = {}
    for label in labels:
        ids = tokenizer("<answer>" + label + "</answer>", add_special_tokens=False)["input_ids"]
        if len(ids) != 3:
            bad[label] = tokenizer.convert_ids_to_tokens(ids)
    if bad:
        raise ValueError(
            f"labels are not single tokens inside <answer>…</answer>: {bad}; "
            "raise vocab_size or add the labels to the tokenizer corpus"
        )
