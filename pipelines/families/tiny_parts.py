"""The parts the tiny random-weight pipelines share: seeded initialisation, tokenizers made in memory
(CLIP, T5, Qwen3), the tiny text encoders, the 4-level VAE, the small UNet and the turbo scheduler.

Modelled on the ``get_dummy_components`` helpers in diffusers' fast tests, but with a 4-level VAE
(scale factor 8) and real-model latent channel counts, so the saved folders behave like the real
checkpoints for shapes, sizes and pipeline switching (``AutoPipelineFor*.from_pipe``) while weighing
a few hundred KB. Each family's builder (`pipelines/families/<family>/tiny.py`) puts them together.
Heavy libraries are imported inside the functions so importing this module is cheap.
"""

from __future__ import annotations

from typing import Any

SEED = 0
CLIP_MAX_LEN = 77  # real CLIP context length; SD pipelines read it from the tokenizer
T5_MAX_LEN = 512  # Flux's default (and maximum) max_sequence_length
TEXT_DIM = 32  # hidden size of every tiny CLIP and T5 text encoder (CLIP's hidden and projection)
VAE_CHANNELS = (8, 8, 8, 8)  # four levels -> vae_scale_factor 8 like the real VAEs

# Qwen3's chat template, trimmed to what the pipelines use: user turns, the generation prompt,
# and the empty think block Qwen3 writes when thinking is off.
_QWEN3_CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{- '<think>\\n\\n</think>\\n\\n' }}"
    "{%- endif %}"
    "{%- endif %}"
)


def seeded() -> None:
    """Re-seed before every component, so each one's weights don't depend on build order."""
    import torch

    torch.manual_seed(SEED)


def clip_tokenizer() -> Any:
    """Byte-level BPE with no merges: every byte (and its end-of-word form) is a token,
    so any unicode text tokenizes without <unk>; nothing is read from disk."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import CLIPTokenizer

    symbols = sorted(ByteLevel.alphabet())  # the 256 byte-level symbols, fixed order
    vocab = {s: i for i, s in enumerate(symbols)}
    vocab.update({s + "</w>": i + len(symbols) for i, s in enumerate(symbols)})
    # Specials last, as in real CLIP, so eos has the highest id.
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=CLIP_MAX_LEN)


def clip_text_encoder(with_projection: bool) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    # vocab = 256 bytes + 256 "</w>" bytes + bos + eos. eos_token_id must be the
    # tokenizer's eos (not the legacy value 2) so pooling picks the eos position.
    config = CLIPTextConfig(
        vocab_size=514,
        hidden_size=TEXT_DIM,
        intermediate_size=37,
        projection_dim=TEXT_DIM,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=CLIP_MAX_LEN,
        bos_token_id=512,
        eos_token_id=513,
        pad_token_id=513,
    )
    seeded()
    cls = CLIPTextModelWithProjection if with_projection else CLIPTextModel
    return cls(config).eval()


def t5_tokenizer() -> Any:
    """Unigram over single printable ASCII chars; anything else maps to <unk>."""
    from transformers import T5Tokenizer

    # Fixed T5 layout: <pad>=0, </s>=1, <unk>=2; no sentinel <extra_id_*> tokens.
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    pieces += [(chr(c), -3.0) for c in range(33, 127)]
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=T5_MAX_LEN)


def t5_text_encoder(vocab_size: int, d_model: int = TEXT_DIM) -> Any:
    from transformers import T5Config, T5EncoderModel

    config = T5Config(
        vocab_size=vocab_size,
        d_model=d_model,
        d_kv=8,
        d_ff=37,
        num_layers=1,
        num_heads=4,
        relative_attention_num_buckets=8,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    seeded()
    return T5EncoderModel(config).eval()


def tiny_vae(latent_channels: int, vae_class: Any = None, **kwargs: Any) -> Any:
    """A 4-level VAE (scale factor 8, as the real ones) of `vae_class` (AutoencoderKL by default)."""
    from diffusers import AutoencoderKL

    if vae_class is None:
        # Everything runs in float32 here; upcasting (SDXL img2img/inpaint) would only
        # re-cast the VAE and log a warning on every call.
        vae_class, kwargs = AutoencoderKL, {"force_upcast": False, **kwargs}
    seeded()
    return vae_class(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * len(VAE_CHANNELS),
        up_block_types=("UpDecoderBlock2D",) * len(VAE_CHANNELS),
        block_out_channels=VAE_CHANNELS,
        layers_per_block=1,
        latent_channels=latent_channels,
        norm_num_groups=4,
        # Mid-block self-attention is quadratic in latent pixels: 1024x1024 would be
        # a 16k x 16k attention matrix on CPU for no benefit in a tiny model.
        mid_block_add_attention=False,
        **kwargs,
    )


def unet(sample_size: int, cross_attention_dim: int, **kwargs: Any) -> Any:
    from diffusers import UNet2DConditionModel

    seeded()
    # Attention only on the downsampled level keeps 1024px generations cheap.
    return UNet2DConditionModel(
        sample_size=sample_size,  # pipelines' default size = sample_size * 8
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(8, 16),
        layers_per_block=1,
        norm_num_groups=4,
        attention_head_dim=2,  # legacy name: this is the number of heads
        cross_attention_dim=cross_attention_dim,
        **kwargs,
    )


def euler_scheduler() -> Any:
    from diffusers import EulerDiscreteScheduler

    # SD-style betas with "trailing" spacing (as sd-turbo/sdxl-turbo) so 1-4 steps
    # start from pure noise.
    return EulerDiscreteScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type="epsilon",
        timestep_spacing="trailing",
        steps_offset=1,
    )


def qwen3_tokenizer() -> Any:
    """Byte-level BPE with no merges (each UTF-8 byte a token) plus Qwen's special tokens, as Qwen3's
    (FLUX.2 [klein] and Z-Image read it)."""
    from tokenizers import AddedToken
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import Qwen2TokenizerFast

    vocab = {symbol: index for index, symbol in enumerate(sorted(ByteLevel.alphabet()))}
    for token in ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"):
        vocab[token] = len(vocab)
    tokenizer = Qwen2TokenizerFast(
        vocab=vocab,
        merges=[],
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
        chat_template=_QWEN3_CHAT_TEMPLATE,
        model_max_length=40960,
        padding_side="right",
    )
    # Kept whole but not special, as in Qwen3.
    tokenizer.add_tokens([AddedToken("<think>", special=False), AddedToken("</think>", special=False)])
    return tokenizer
