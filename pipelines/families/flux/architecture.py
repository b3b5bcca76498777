"""FLUX.1 [schnell] and [dev] at full size, from their published configs (see full_size.py)."""

from __future__ import annotations

from pipelines.families.full_size import CLIP_L, FLUX1_VAE, T5_XXL, Architecture, Part, clip

# black-forest-labs/FLUX.1-schnell and FLUX.1-dev `transformer/config.json`; dev adds the guidance embedder.
FLUX1_TRANSFORMER = {
    "patch_size": 1,
    "in_channels": 64,
    "num_layers": 19,
    "num_single_layers": 38,
    "attention_head_dim": 128,
    "num_attention_heads": 24,
    "joint_attention_dim": 4096,
    "pooled_projection_dim": 768,
    "guidance_embeds": False,
    "axes_dims_rope": [16, 56, 56],
}
# Each repository's `scheduler/scheduler_config.json`.
FLUX_SCHNELL_SCHEDULER = (
    "FlowMatchEulerDiscreteScheduler",
    {"num_train_timesteps": 1000, "shift": 1.0, "use_dynamic_shifting": False},
)
FLUX_DEV_SCHEDULER = (
    "FlowMatchEulerDiscreteScheduler",
    {
        "num_train_timesteps": 1000,
        "shift": 3.0,
        "use_dynamic_shifting": True,
        "base_shift": 0.5,
        "max_shift": 1.15,
        "base_image_seq_len": 256,
        "max_image_seq_len": 4096,
    },
)

_FLUX1_PARTS = {
    "transformer": Part("diffusers", "FluxTransformer2DModel", FLUX1_TRANSFORMER, 11.9e9),
    "text_encoder": clip(CLIP_L, False, 123.1e6),
    "text_encoder_2": Part("transformers", "T5EncoderModel", T5_XXL, 4.76e9),
    "vae": Part("diffusers", "AutoencoderKL", FLUX1_VAE, 83.8e6),
}

ARCHITECTURES = (
    Architecture(
        "flux-schnell",
        "FluxPipeline",
        _FLUX1_PARTS,
        FLUX_SCHNELL_SCHEDULER,
        {"tokenizer": "clip", "tokenizer_2": "t5"},
        size=(1024, 1024),
        steps=4,
        guidance=0.0,
        catalog_id="flux-schnell",
        family="flux",
        call_options={"max_sequence_length": 256},
    ),
    Architecture(
        "flux-dev",
        "FluxPipeline",
        {
            **_FLUX1_PARTS,
            "transformer": Part(
                "diffusers", "FluxTransformer2DModel", {**FLUX1_TRANSFORMER, "guidance_embeds": True}, 11.9e9
            ),
        },
        FLUX_DEV_SCHEDULER,
        {"tokenizer": "clip", "tokenizer_2": "t5"},
        size=(1024, 1024),
        steps=28,
        guidance=3.5,
        catalog_id="flux-dev",
        family="flux",
        call_options={"max_sequence_length": 512},
    ),
)
