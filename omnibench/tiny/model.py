"""The embedded default model: a Qwen2.5-Omni thinker with a tiny config, built locally.

Same class as the real thinker (``Qwen2_5OmniThinkerForConditionalGeneration``: Whisper-style audio
encoder, windowed ViT with 2x2 patch merging, M-RoPE decoder), so every code path — processor,
placeholders, 3-D positions, generation, saving — is the one a real checkpoint takes.  The sizes
below train SFT + GRPO on SynthEmo in minutes on two CPU cores:

* 112 px frames, patch 14, merge 2, 8 frames (temporal patch 2)  -> 4 x 4 x 4 = 64 video tokens;
* 1.5 s of 16 kHz audio -> 150 mel frames -> 37 audio tokens;
* text decoder hidden 64, 2 layers; vision depth 2 / hidden 32; audio 2 layers / d_model 32;
  about 0.28 M parameters with the ~670-token vocabulary.

``build_tiny(arch="qwen3_omni")`` builds the same-sized Qwen3-Omni thinker instead (MoE decoder with
4 experts, SigLIP-style ViT with patch 16 and deep-stack features, 128 px frames); it goes through the
same inputs, generation, scoring and loading code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields

import torch
from transformers import (
    GenerationConfig,
    Qwen2_5OmniProcessor,
    Qwen2_5OmniThinkerConfig,
    Qwen2_5OmniThinkerForConditionalGeneration,
    Qwen2VLImageProcessor,
    Qwen2VLVideoProcessor,
    Qwen3OmniMoeProcessor,
    Qwen3OmniMoeThinkerConfig,
    Qwen3OmniMoeThinkerForConditionalGeneration,
    Qwen3VLVideoProcessor,
    WhisperFeatureExtractor,
)

from omnibench.labels import DFEW7
from omnibench.model.attention import batch_tower_attention
from omnibench.model.inputs import DEFAULT_PROMPT
from omnibench.model.patch_embed import matmul_patch_embed
from omnibench.tiny.tokenizer import build_tokenizer


@dataclass
class TinySizes:
    """Sizes of the tiny thinker; any field can be overridden through ``build_tiny(**overrides)``."""

    text_hidden: int = field(
        default=64, metadata={"help": "decoder hidden size (64: best accuracy per CPU second)"}
    )
    text_layers: int = field(default=2, metadata={"help": "decoder layers"})
    text_heads: int = field(
        default=4, metadata={"help": "decoder attention heads (head dim = hidden / heads)"}
    )
    text_kv_heads: int = field(
        default=2, metadata={"help": "decoder key/value heads (grouped-query attention)"}
    )
    text_intermediate: int = field(default=128, metadata={"help": "decoder MLP width"})
    vision_depth: int = field(default=2, metadata={"help": "vision transformer blocks"})
    vision_hidden: int = field(default=32, metadata={"help": "vision hidden size"})
    vision_heads: int = field(default=2, metadata={"help": "vision attention heads"})
    vision_intermediate: int = field(default=64, metadata={"help": "vision MLP width"})
    patch_size: int = field(default=14, metadata={"help": "vision patch size (pixels)"})
    frame_size: int = field(default=112, metadata={"help": "largest frame side fed to the model (pixels)"})
    min_frame_size: int = field(
        default=56, metadata={"help": "smallest frame side (smaller frames are upscaled)"}
    )
    audio_layers: int = field(default=2, metadata={"help": "audio encoder layers"})
    audio_d_model: int = field(default=32, metadata={"help": "audio encoder width"})
    audio_heads: int = field(default=2, metadata={"help": "audio encoder attention heads"})
    audio_ffn: int = field(default=64, metadata={"help": "audio encoder MLP width"})
    vocab_size: int = field(
        default=1024, metadata={"help": "BPE vocabulary cap (training stops when merges run out)"}
    )
    rope_theta: float = field(default=10000.0, metadata={"help": "decoder RoPE base"})

    def __post_init__(self):
        head_dim = self.text_hidden // self.text_heads
        if self.text_hidden % self.text_heads or head_dim % 2:
            raise ValueError(
                f"text_hidden {self.text_hidden} must split into {self.text_heads} heads of even size"
            )
        if self.text_heads % self.text_kv_heads:
            raise ValueError("text_heads must be a multiple of text_kv_heads")
        if self.vision_hidden % self.vision_heads or (self.vision_hidden // self.vision_heads) % 4:
            raise ValueError(
                "vision head dim (vision_hidden / vision_heads) must be a multiple of 4 (2-D RoPE)"
            )
        if self.frame_size % (2 * self.patch_size) or self.min_frame_size % (2 * self.patch_size):
            raise ValueError(f"frame sizes must be multiples of 2 * patch_size = {2 * self.patch_size}")


def mrope_section(head_dim: int) -> list[int]:
    """Split the rotary half-dimension into (temporal, height, width) parts like Qwen's [16, 24, 24]."""
    half = head_dim // 2
    t = half // 4
    h = (half - t) // 2
    return [t, h, half - t - h]


def tiny_config(tokenizer, sizes: TinySizes) -> Qwen2_5OmniThinkerConfig:
    """A Qwen2.5-Omni thinker config whose token ids point at ``tokenizer``'s control tokens."""
    ids = tokenizer.convert_tokens_to_ids
    head_dim = sizes.text_hidden // sizes.text_heads
    text = {
        "vocab_size": len(tokenizer),
        "hidden_size": sizes.text_hidden,
        "intermediate_size": sizes.text_intermediate,
        "num_hidden_layers": sizes.text_layers,
        "num_attention_heads": sizes.text_heads,
        "num_key_value_heads": sizes.text_kv_heads,
        "max_position_embeddings": 4096,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": sizes.rope_theta,
            "mrope_section": mrope_section(head_dim),
        },
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": ids("<|im_end|>"),
        "tie_word_embeddings": False,
    }
    vision = {
        "depth": sizes.vision_depth,
        "hidden_size": sizes.vision_hidden,
        "intermediate_size": sizes.vision_intermediate,
        "num_heads": sizes.vision_heads,
        "patch_size": sizes.patch_size,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": sizes.frame_size,
        "out_hidden_size": sizes.text_hidden,
        "fullatt_block_indexes": [sizes.vision_depth - 1],
    }
    audio = {
        "num_mel_bins": 128,
        "encoder_layers": sizes.audio_layers,
        "encoder_attention_heads": sizes.audio_heads,
        "encoder_ffn_dim": sizes.audio_ffn,
        "d_model": sizes.audio_d_model,
        "output_dim": sizes.text_hidden,
        "n_window": 100,
        "max_source_positions": 1500,
    }
    return Qwen2_5OmniThinkerConfig(
        audio_config=audio,
        vision_config=vision,
        text_config=text,
        audio_token_index=ids("<|AUDIO|>"),
        image_token_index=ids("<|IMAGE|>"),
        video_token_index=ids("<|VIDEO|>"),
        audio_start_token_id=ids("<|audio_bos|>"),
        audio_end_token_id=ids("<|audio_eos|>"),
        vision_start_token_id=ids("<|vision_bos|>"),
        vision_end_token_id=ids("<|vision_eos|>"),
        user_token_id=ids("<|im_start|>"),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=ids("<|im_end|>"),
    )


def tiny_processor(tokenizer, sizes: TinySizes) -> Qwen2_5OmniProcessor:
    """Whisper features (128 mel bins), Qwen2-VL image/video processors sized for small frames, the tokenizer."""
    lo, hi = sizes.min_frame_size**2, sizes.frame_size**2
    pix = {"shortest_edge": lo, "longest_edge": hi}
    vision = {"patch_size": sizes.patch_size, "temporal_patch_size": 2, "merge_size": 2, "size": pix}
    return Qwen2_5OmniProcessor(
        image_processor=Qwen2VLImageProcessor(**vision),
        video_processor=Qwen2VLVideoProcessor(**vision, cap_pixels_per_frame=False),
        feature_extractor=WhisperFeatureExtractor(
            feature_size=128, sampling_rate=16000, return_attention_mask=True
        ),
        tokenizer=tokenizer,
        chat_template=tokenizer.chat_template,
    )


def tiny_qwen3_config(tokenizer, sizes: TinySizes) -> Qwen3OmniMoeThinkerConfig:
    """A Qwen3-Omni (MoE) thinker config of the tiny sizes, token ids from ``tokenizer``."""
    ids = tokenizer.convert_tokens_to_ids
    head_dim = sizes.text_hidden // sizes.text_heads
    text = {
        "vocab_size": len(tokenizer),
        "hidden_size": sizes.text_hidden,
        "intermediate_size": sizes.text_intermediate,
        "moe_intermediate_size": max(8, sizes.text_intermediate // 4),
        "num_experts": 4,
        "num_experts_per_tok": 2,
        "num_hidden_layers": sizes.text_layers,
        "num_attention_heads": sizes.text_heads,
        "num_key_value_heads": sizes.text_kv_heads,
        "head_dim": head_dim,
        "max_position_embeddings": 4096,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": sizes.rope_theta,
            "mrope_section": mrope_section(head_dim),
            "mrope_interleaved": True,
        },
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": ids("<|im_end|>"),
    }
    grid = sizes.frame_size // sizes.patch_size
    vision = {
        "depth": sizes.vision_depth,
        "hidden_size": sizes.vision_hidden,
        "intermediate_size": sizes.vision_intermediate,
        "num_heads": sizes.vision_heads,
        "patch_size": sizes.patch_size,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "out_hidden_size": sizes.text_hidden,
        "num_position_embeddings": grid * grid,
        "deepstack_visual_indexes": [0],
    }
    audio = {
        "num_mel_bins": 128,
        "encoder_layers": sizes.audio_layers,
        "encoder_attention_heads": sizes.audio_heads,
        "encoder_ffn_dim": sizes.audio_ffn,
        "d_model": sizes.audio_d_model,
        "output_dim": sizes.text_hidden,
        "downsample_hidden_size": 16,
        "max_source_positions": 1500,
    }
    return Qwen3OmniMoeThinkerConfig(
        audio_config=audio,
        vision_config=vision,
        text_config=text,
        audio_token_id=ids("<|AUDIO|>"),
        image_token_id=ids("<|IMAGE|>"),
        video_token_id=ids("<|VIDEO|>"),
        audio_start_token_id=ids("<|audio_bos|>"),
        vision_start_token_id=ids("<|vision_bos|>"),
        user_token_id=ids("<|im_start|>"),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=ids("<|im_end|>"),
    )


def tiny_qwen3_processor(tokenizer, sizes: TinySizes, num_frames: int = 8) -> Qwen3OmniMoeProcessor:
    """Qwen3-Omni processor; its video ``size`` bounds the pixels of the whole clip (``num_frames`` frames)."""
    image = {"shortest_edge": sizes.min_frame_size**2, "longest_edge": sizes.frame_size**2}
    video = {k: v * num_frames for k, v in image.items()}
    common = {"patch_size": sizes.patch_size, "temporal_patch_size": 2, "merge_size": 2}
    return Qwen3OmniMoeProcessor(
        image_processor=Qwen2VLImageProcessor(**common, size=image),
        video_processor=Qwen3VLVideoProcessor(**common, size=video, do_sample_frames=False),
        feature_extractor=WhisperFeatureExtractor(
            feature_size=128, sampling_rate=16000, return_attention_mask=True
        ),
        tokenizer=tokenizer,
        chat_template=tokenizer.chat_template,
    )


#: tiny architectures: name -> (model class, config builder, processor builder, size defaults)
TINY_ARCHS = {
    "qwen2_5_omni": (Qwen2_5OmniThinkerForConditionalGeneration, tiny_config, tiny_processor, {}),
    "qwen3_omni": (Qwen3OmniMoeThinkerForConditionalGeneration, tiny_qwen3_config, tiny_qwen3_processor,
                   {"patch_size": 16, "frame_size": 128, "min_frame_size": 64}),
}  # fmt: skip


def build_tiny(
    labels: Sequence[str] = DFEW7,
    seed: int = 0,
    prompt: str = DEFAULT_PROMPT,
    arch: str = "qwen2_5_omni",
    **size_overrides,
):
    """A randomly initialised tiny thinker and its processor (tokenizer trained locally, nothing downloaded).

    ``size_overrides``: any :class:`TinySizes` field, e.g. ``build_tiny(text_hidden=128)``.
    ``arch``: ``"qwen2_5_omni"`` (default, the demo model) or ``"qwen3_omni"``.
    The global torch RNG is left untouched (the weights come from a forked generator seeded by ``seed``).
    """
    if arch not in TINY_ARCHS:
        raise ValueError(f"build_tiny: unknown arch {arch!r}; use one of {sorted(TINY_ARCHS)}")
    model_cls, make_config, make_processor, arch_defaults = TINY_ARCHS[arch]
    known = {f.name for f in fields(TinySizes)}
    unknown = sorted(set(size_overrides) - known)
    if unknown:
        raise TypeError(f"build_tiny: unknown size option(s) {unknown}; known: {sorted(known)}")
    sizes = TinySizes(**{**arch_defaults, **size_overrides})
    tokenizer = build_tokenizer(labels, prompt, vocab_size=sizes.vocab_size)
    config = make_config(tokenizer, sizes)
    config.omnibench_tiny = asdict(sizes)  # recorded in config.json, for provenance only
    config.omnibench_labels = list(labels)  # the labels the model answers in (evaluate.model_labels reads it)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_cls(config)
    model.generation_config = GenerationConfig(
        eos_token_id=[tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.pad_token_id],
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
        max_new_tokens=48,
    )
    batch_tower_attention(model)  # one attention call per run of equal chunks (bitwise the same as sdpa's loop)
    matmul_patch_embed(model)  # the patch embedding's Conv3d as one matrix product (omnibench.model.patch_embed)
    model.eval()
    return model, make_processor(tokenizer, sizes)


def full_layout(thinker):
    """The full ``Qwen2_5OmniForConditionalGeneration`` (thinker + a tiny talker + a tiny token2wav)
    around a tiny ``thinker``: the layout of the Qwen2.5-Omni releases (config ``model_type``
    ``qwen2_5_omni``, weights prefixed ``thinker.`` / ``talker.`` / ``token2wav.``), so tests load a
    real release's structure without its size."""
    from transformers import Qwen2_5OmniConfig, Qwen2_5OmniForConditionalGeneration

    tc = thinker.config
    vocab = tc.text_config.vocab_size
    talker = {
        "vocab_size": vocab, "embedding_size": tc.text_config.hidden_size, "hidden_size": 32, "intermediate_size": 64,
        "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 16,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
        "tts_codec_start_token_id": vocab - 7, "tts_codec_end_token_id": vocab - 6, "tts_codec_pad_token_id": vocab - 5,
        "tts_codec_mask_token_id": vocab - 4, "tts_text_start_token_id": vocab - 3, "tts_text_end_token_id": vocab - 2,
        "tts_text_pad_token_id": vocab - 1, "audio_token_index": tc.audio_token_index,
        "image_token_index": tc.image_token_index, "video_token_index": tc.video_token_index,
        "vision_start_token_id": tc.vision_start_token_id, "vision_end_token_id": tc.vision_end_token_id,
        "audio_start_token_id": tc.audio_start_token_id, "audio_end_token_id": tc.audio_end_token_id,
    }  # fmt: skip
    dit = {
        "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "head_dim": 16, "ff_mult": 1,
        "emb_dim": 16, "num_embeds": 64, "mel_dim": 8, "enc_emb_dim": 8, "enc_dim": 16,
        "enc_channels": [16, 16, 16, 16, 32], "enc_attention_channels": 8, "enc_se_channels": 8,
        "look_ahead_layers": [1], "look_backward_layers": [0],
    }  # fmt: skip
    bigvgan = {"mel_dim": 8, "upsample_initial_channel": 16, "resblock_kernel_sizes": [3],
               "resblock_dilation_sizes": [[1, 3, 5]], "upsample_rates": [2], "upsample_kernel_sizes": [4]}
    cfg = Qwen2_5OmniConfig(thinker_config=tc.to_dict(), talker_config=talker,
                            token2wav_config={"dit_config": dit, "bigvgan_config": bigvgan})
    full = Qwen2_5OmniForConditionalGeneration(cfg)
    full.thinker.load_state_dict(thinker.state_dict())
    return full


def save_full_layout(directory, labels: Sequence[str] = DFEW7, seed: int = 0, **size_overrides):
    """Build a tiny thinker (:func:`build_tiny`) and save it in the full Qwen2.5-Omni layout with its
    processor (patch 14, merge 2, temporal patch 2, 128 mel bins: the real processor's settings).
    Returns the folder; :func:`omnibench.model.loading.load_model` builds only its thinker."""
    from pathlib import Path

    thinker, processor = build_tiny(labels=labels, seed=seed, **size_overrides)
    full = full_layout(thinker)
    full.generation_config = thinker.generation_config
    out = Path(directory)
    full.save_pretrained(out)
    processor.save_pretrained(out)
    return out
