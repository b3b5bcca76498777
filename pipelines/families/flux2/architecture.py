"""FLUX.2 [klein] 4B at full size, from its published configs (see full_size.py)."""

from __future__ import annotations

from pipelines.families.full_size import KL_BLOCKS, QWEN3_4B, Architecture, Part

# black-forest-labs/FLUX.2-klein-4B `transformer/config.json`.
FLUX2_KLEIN_4B_TRANSFORMER = {
    "patch_size": 1,
    "in_channels": 128,
    "out_channels": None,
    "num_layers": 5,
    "num_single_layers": 20,
    "attention_head_dim": 128,
    "num_attention_heads": 24,
    "joint_attention_dim": 7680,
    "timestep_guidance_channels": 256,
    "mlp_ratio": 3.0,
    "axes_dims_rope": [32, 32, 32, 32],
    "rope_theta": 2000,
    "eps": 1e-6,
    "guidance_embeds": False,
}
# black-forest-labs/FLUX.2-klein-4B `vae/config.json` (shared by every FLUX.2).
FLUX2_VAE = {
    **KL_BLOCKS,
    "latent_channels": 32,
    "patch_size": [2, 2],
    "batch_norm_eps": 1e-4,
    "batch_norm_momentum": 0.1,
    "use_quant_conv": True,
    "use_post_quant_conv": True,
    "sample_size": 1024,
}
# Its `scheduler/scheduler_config.json`: FLUX.1 [dev]'s dynamic shift, exponential.
FLUX2_SCHEDULER = (
    "FlowMatchEulerDiscreteScheduler",
    {
        "num_train_timesteps": 1000,
        "shift": 3.0,
        "use_dynamic_shifting": True,
        "base_shift": 0.5,
        "max_shift": 1.15,
        "base_image_seq_len": 256,
        "max_image_seq_len": 4096,
        "time_shift_type": "exponential",
    },
)

ARCHITECTURES = (
    Architecture(
        "flux2-klein",
        "Flux2KleinPipeline",
        {
            "transformer": Part("diffusers", "Flux2Transformer2DModel", FLUX2_KLEIN_4B_TRANSFORMER, 3.9e9),
            "text_encoder": Part("transformers", "Qwen3ForCausalLM", QWEN3_4B, 4.02e9),
            "vae": Part("diffusers", "AutoencoderKLFlux2", FLUX2_VAE, 84.0e6),
        },
        FLUX2_SCHEDULER,
        {"tokenizer": "qwen"},
        size=(1024, 1024),
        steps=4,
        guidance=1.0,
        catalog_id="flux2-klein",
        family="flux2",
        pipeline_options={"is_distilled": True},
    ),
)
