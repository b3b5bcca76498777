"""Tiny random-weight diffusers pipelines for tests and offline development.

Modelled on the ``get_dummy_components`` helpers in diffusers' fast tests, but
with a 4-level VAE (scale factor 8) and real-model latent channel counts, so the
saved folders behave like SD 1.x / SDXL / Flux checkpoints for shapes, sizes and
pipeline switching (``AutoPipelineFor*.from_pipe``) while weighing a few hundred KB.
Heavy libraries are imported inside the functions so importing this module is cheap.
"""

from __future__ import annotations

import importlib
import pathlib
from collections.abc import Callable
from typing import Any

_SEED = 0
_CLIP_MAX_LEN = 77  # real CLIP context length; SD pipelines read it from the tokenizer
_T5_MAX_LEN = 512  # Flux's default (and maximum) max_sequence_length
_TEXT_DIM = 32  # hidden size of every tiny text encoder
_VAE_CHANNELS = (8, 8, 8, 8)  # four levels -> vae_scale_factor 8 like the real VAEs


def _seeded() -> None:
    # Re-seed before every component so each one's weights don't depend on build order.
    import torch

    torch.manual_seed(_SEED)


def _clip_tokenizer() -> Any:
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
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=_CLIP_MAX_LEN)


def _clip_text_encoder(with_projection: bool) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    # vocab = 256 bytes + 256 "</w>" bytes + bos + eos. eos_token_id must be the
    # tokenizer's eos (not the legacy value 2) so pooling picks the eos position.
    config = CLIPTextConfig(
        vocab_size=514,
        hidden_size=_TEXT_DIM,
        intermediate_size=37,
        projection_dim=_TEXT_DIM,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=_CLIP_MAX_LEN,
        bos_token_id=512,
        eos_token_id=513,
        pad_token_id=513,
    )
    _seeded()
    cls = CLIPTextModelWithProjection if with_projection else CLIPTextModel
    return cls(config).eval()


def _t5_tokenizer() -> Any:
    """Unigram over single printable ASCII chars; anything else maps to <unk>."""
    from transformers import T5Tokenizer

    # Fixed T5 layout: <pad>=0, </s>=1, <unk>=2; no sentinel <extra_id_*> tokens.
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    pieces += [(chr(c), -3.0) for c in range(33, 127)]
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=_T5_MAX_LEN)


def _t5_text_encoder(vocab_size: int, d_model: int = _TEXT_DIM) -> Any:
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
    _seeded()
    return T5EncoderModel(config).eval()


def tiny_vae(latent_channels: int, vae_class: Any = None, **kwargs: Any) -> Any:
    """A 4-level VAE (scale factor 8, as the real ones) of `vae_class` (AutoencoderKL by default)."""
    from diffusers import AutoencoderKL

    if vae_class is None:
        # Everything runs in float32 here; upcasting (SDXL img2img/inpaint) would only
        # re-cast the VAE and log a warning on every call.
        vae_class, kwargs = AutoencoderKL, {"force_upcast": False, **kwargs}
    _seeded()
    return vae_class(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * len(_VAE_CHANNELS),
        up_block_types=("UpDecoderBlock2D",) * len(_VAE_CHANNELS),
        block_out_channels=_VAE_CHANNELS,
        layers_per_block=1,
        latent_channels=latent_channels,
        norm_num_groups=4,
        # Mid-block self-attention is quadratic in latent pixels: 1024x1024 would be
        # a 16k x 16k attention matrix on CPU for no benefit in a tiny model.
        mid_block_add_attention=False,
        **kwargs,
    )


def _unet(sample_size: int, cross_attention_dim: int, **kwargs: Any) -> Any:
    from diffusers import UNet2DConditionModel

    _seeded()
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


def _euler_scheduler() -> Any:
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


def _build_sd() -> Any:
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(
        vae=tiny_vae(4, scaling_factor=0.18215),
        text_encoder=_clip_text_encoder(with_projection=False),
        tokenizer=_clip_tokenizer(),
        unet=_unet(sample_size=64, cross_attention_dim=_TEXT_DIM),
        scheduler=_euler_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def _build_sdxl() -> Any:
    from diffusers import StableDiffusionXLPipeline

    time_embed_dim = 8
    unet = _unet(
        sample_size=128,
        # SDXL concatenates both encoders' penultimate hidden states.
        cross_attention_dim=2 * _TEXT_DIM,
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=time_embed_dim,
        # 6 micro-conditioning ints (orig size, crop, target size) + pooled text_embeds.
        projection_class_embeddings_input_dim=6 * time_embed_dim + _TEXT_DIM,
    )
    return StableDiffusionXLPipeline(
        vae=tiny_vae(4, scaling_factor=0.13025),
        text_encoder=_clip_text_encoder(with_projection=False),
        text_encoder_2=_clip_text_encoder(with_projection=True),
        tokenizer=_clip_tokenizer(),
        tokenizer_2=_clip_tokenizer(),
        unet=unet,
        scheduler=_euler_scheduler(),
    )


def _build_flux() -> Any:
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel

    tokenizer_2 = _t5_tokenizer()
    _seeded()
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=64,  # 16 latent channels packed 2x2
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=_TEXT_DIM,  # T5 d_model
        pooled_projection_dim=_TEXT_DIM,  # CLIP pooled output
        guidance_embeds=True,  # FLUX.1-dev style: guidance_scale is an input
        axes_dims_rope=(4, 6, 6),  # must sum to attention_head_dim
    )
    # FLUX.1-dev scheduler config: resolution-dependent shift.
    scheduler = FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000,
        shift=3.0,
        use_dynamic_shifting=True,
        base_shift=0.5,
        max_shift=1.15,
        base_image_seq_len=256,
        max_image_seq_len=4096,
    )
    # FLUX.1 VAE: 16 latent channels, no quant convs, shift + scale normalisation.
    vae = tiny_vae(16, scaling_factor=0.3611, shift_factor=0.1159, use_quant_conv=False, use_post_quant_conv=False)
    return FluxPipeline(
        scheduler=scheduler,
        vae=vae,
        text_encoder=_clip_text_encoder(with_projection=False),
        tokenizer=_clip_tokenizer(),
        text_encoder_2=_t5_text_encoder(vocab_size=len(tokenizer_2)),
        tokenizer_2=tokenizer_2,
        transformer=transformer,
    )


# The newer families' builders, each in a module of its own: imported only when built.
_BUILT_ELSEWHERE = {
    "flux2": ("pipelines.tiny_flux2", "build_flux2"),
    "zimage": ("pipelines.tiny_zimage", "build_zimage"),
    "sd3": ("pipelines.tiny_sd3", "build_sd3"),
    "qwen-image": ("pipelines.tiny_qwen", "build_qwen_image"),
    "flux-kontext": ("pipelines.tiny_kontext", "build_kontext"),
}


def _builder(module: str, name: str) -> Callable[[], Any]:
    return lambda: getattr(importlib.import_module(module), name)()


_BUILDERS: dict[str, Callable[[], Any]] = {
    "sd": _build_sd, "sdxl": _build_sdxl, "flux": _build_flux,
    **{family: _builder(*where) for family, where in _BUILT_ELSEWHERE.items()},
}
TINY_FAMILIES = tuple(_BUILDERS)


def build_tiny_model(family: str, dest: pathlib.Path) -> None:
    """Build a tiny random-weight pipeline of `family` and save it as a diffusers folder at dest."""
    if family not in _BUILDERS:
        raise ValueError(f"unknown tiny family {family!r}; expected one of {TINY_FAMILIES}")
    import torch

    # fork_rng: seeding must not disturb the caller's global RNG stream.
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        pipe = _BUILDERS[family]()
    dest = pathlib.Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(dest, safe_serialization=True)
