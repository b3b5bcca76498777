"""A tiny random-weight Qwen-Image pipeline (`QwenImagePipeline`), built offline.

Not built: Qwen-Image-Edit-2509's `QwenImageEditPlusPipeline`. Its Qwen2VLProcessor cannot be made
or loaded under transformers 5.x without a video processor, which needs torchvision, and PyPI's
torchvision does not load beside the CPU torch this project tests on.

As the other families' tiny models (pipelines/families/tiny_parts.py): seeded random weights, a
byte-level tokenizer made in memory, the real latent channel count (16) and scale factor 8.
A Qwen2.5-VL text encoder (its vision tower real, just narrow), the MMDiT transformer and Qwen-Image's own VAE
(`AutoencoderKLQwenImage`: a causal 3D VAE run on single frames, with per-channel latent
mean/std normalisation instead of FLUX's scale + shift).
"""

from __future__ import annotations

from typing import Any

from pipelines.families.tiny_parts import seeded

_TEXT_WIDTH = 16  # Qwen2.5-VL hidden size = the transformer's joint_attention_dim
_LATENT_CHANNELS = 16
_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# Qwen2-VL's chat template, trimmed to text and image content; the pipelines format their own
# prompts, this is for anyone using the processor as a chat model's.
_CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['content'] is string %}{{- message['content'] }}"
    "{%- else %}{%- for part in message['content'] %}"
    "{%- if part['type'] == 'image' %}{{- '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{%- elif part['type'] == 'text' %}{{- part['text'] }}{%- endif %}"
    "{%- endfor %}{%- endif %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def _tokenizer() -> Any:
    """Byte-level BPE with no merges (each UTF-8 byte a token) plus Qwen2.5-VL's special tokens."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import Qwen2TokenizerFast

    vocab = {symbol: index for index, symbol in enumerate(sorted(ByteLevel.alphabet()))}
    for token in _SPECIAL_TOKENS:
        vocab[token] = len(vocab)
    return Qwen2TokenizerFast(
        vocab=vocab,
        merges=[],
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=list(_SPECIAL_TOKENS[1:]),
        chat_template=_CHAT_TEMPLATE,
        model_max_length=32768,
        padding_side="right",
    )


def _text_encoder(tokenizer: Any) -> Any:
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    ids = tokenizer.convert_tokens_to_ids
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": _TEXT_WIDTH,
            "intermediate_size": 16,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            # multimodal rope: (time, height, width) sections of head_dim / 2 = 4
            "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [1, 1, 2]},
            "bos_token_id": None,
            "eos_token_id": ids("<|im_end|>"),
            "pad_token_id": ids("<|endoftext|>"),
        },
        vision_config={
            "depth": 2,
            "hidden_size": 16,
            "intermediate_size": 16,
            "num_heads": 2,
            "out_hidden_size": _TEXT_WIDTH,  # image tokens are spliced into the text sequence
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "fullatt_block_indexes": [1],  # window attention, then one full-attention block
        },
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
    )
    seeded()
    return Qwen2_5_VLForConditionalGeneration(config).eval()


def _transformer() -> Any:
    from diffusers import QwenImageTransformer2DModel

    seeded()
    return QwenImageTransformer2DModel(
        patch_size=2,
        in_channels=4 * _LATENT_CHANNELS,  # 2x2 packed latents
        out_channels=_LATENT_CHANNELS,
        num_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=_TEXT_WIDTH,
        guidance_embeds=False,
        axes_dims_rope=(8, 4, 4),  # (frame, height, width); sums to attention_head_dim
    )


def _vae() -> Any:
    from diffusers import AutoencoderKLQwenImage

    seeded()
    # Three downsamples -> scale factor 8 like the real one; the default latents_mean/std are the
    # real model's, so a preview that forgot them shows it. Kept very narrow: CPU runs its causal
    # 3D convs with the slow im2col kernel, and the mid-block's single-head attention over all
    # latent pixels (16k at 1024x1024) cannot be turned off.
    return AutoencoderKLQwenImage(
        base_dim=4,
        z_dim=_LATENT_CHANNELS,
        dim_mult=[1, 1, 2, 2],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    ).eval()


def _scheduler() -> Any:
    from diffusers import FlowMatchEulerDiscreteScheduler

    # Qwen-Image's scheduler_config.json: exponential resolution-dependent shift.
    return FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000,
        shift=1.0,
        use_dynamic_shifting=True,
        base_shift=0.5,
        max_shift=0.9,
        base_image_seq_len=256,
        max_image_seq_len=8192,
        shift_terminal=0.02,
        time_shift_type="exponential",
    )


def build_tiny() -> Any:
    from diffusers import QwenImagePipeline

    tokenizer = _tokenizer()
    return QwenImagePipeline(
        scheduler=_scheduler(),
        vae=_vae(),
        text_encoder=_text_encoder(tokenizer),
        tokenizer=tokenizer,
        transformer=_transformer(),
    )
