"""A tiny random-weight FLUX.2 [klein] pipeline (`Flux2KleinPipeline`), built offline.

From the shared tiny parts (pipelines/families/tiny_parts.py): seeded random weights, a tokenizer
made in memory, the same 4-level VAE (scale factor 8, so sizes snap to multiples of 16 after 2x2 patching) and
the real model's latent channel counts (32 in the VAE, 128 in the transformer). The Qwen3 text
encoder is narrow but 28 layers deep, so the pipeline's default `text_encoder_out_layers`
(9, 18, 27) work unchanged, exactly as with the real model.
"""

from __future__ import annotations

from typing import Any

from pipelines.families.tiny_parts import SEED, qwen3_tokenizer, seeded, tiny_vae

_QWEN_WIDTH = 16
_QWEN_LAYERS = 28  # the pipeline reads hidden states 9, 18 and 27
_STACKED_LAYERS = 3  # ...stacked into the transformer's context: 3 x width
_LATENT_CHANNELS = 32


def _qwen_text_encoder(tokenizer: Any) -> Any:
    from transformers import Qwen3Config, Qwen3ForCausalLM

    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=_QWEN_WIDTH,
        intermediate_size=16,
        num_hidden_layers=_QWEN_LAYERS,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=8,
        max_position_embeddings=1024,  # past the pipeline's 512-token prompts
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    seeded()
    return Qwen3ForCausalLM(config).eval()


def _vae() -> Any:
    import torch
    from diffusers import AutoencoderKLFlux2

    vae = tiny_vae(_LATENT_CHANNELS, AutoencoderKLFlux2)
    # Latent batch-norm statistics that are not the identity, as the real VAE's are, so a
    # preview decode that forgot to undo them shows it.
    with torch.no_grad():
        generator = torch.Generator().manual_seed(SEED)
        vae.bn.running_mean.copy_(0.1 * torch.randn(vae.bn.num_features, generator=generator))
        vae.bn.running_var.copy_(0.5 + torch.rand(vae.bn.num_features, generator=generator))
    return vae.eval()


def _transformer() -> Any:
    from diffusers import Flux2Transformer2DModel

    seeded()
    return Flux2Transformer2DModel(
        patch_size=1,
        in_channels=4 * _LATENT_CHANNELS,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=_STACKED_LAYERS * _QWEN_WIDTH,
        timestep_guidance_channels=256,
        axes_dims_rope=(4, 4, 4, 4),  # sums to attention_head_dim
        guidance_embeds=False,  # klein is guidance-distilled
    )


def _scheduler() -> Any:
    from diffusers import FlowMatchEulerDiscreteScheduler

    # FLUX.2's: dynamic shifting (the pipeline always passes mu).
    return FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000,
        shift=3.0,
        use_dynamic_shifting=True,
        base_shift=0.5,
        max_shift=1.15,
        base_image_seq_len=256,
        max_image_seq_len=4096,
        time_shift_type="exponential",
    )


def build_tiny() -> Any:
    from diffusers import Flux2KleinPipeline

    tokenizer = qwen3_tokenizer()
    return Flux2KleinPipeline(
        scheduler=_scheduler(),
        vae=_vae(),
        text_encoder=_qwen_text_encoder(tokenizer),
        tokenizer=tokenizer,
        transformer=_transformer(),
        is_distilled=True,  # as FLUX.2 [klein] 4B: few steps, guidance ignored
    )
