"""Z-Image-Turbo at full size, from its published configs (see full_size.py)."""

from __future__ import annotations

from pipelines.families.full_size import FLUX1_VAE, QWEN3_4B, Architecture, Part

# Tongyi-MAI/Z-Image-Turbo `transformer/config.json`.
Z_IMAGE_TRANSFORMER = {
    "all_patch_size": [2],
    "all_f_patch_size": [1],
    "in_channels": 16,
    "dim": 3840,
    "n_layers": 30,
    "n_refiner_layers": 2,
    "n_heads": 30,
    "n_kv_heads": 30,
    "norm_eps": 1e-5,
    "qk_norm": True,
    "cap_feat_dim": 2560,
    "rope_theta": 256.0,
    "t_scale": 1000.0,
    "axes_dims": [32, 48, 48],
    "axes_lens": [1536, 512, 512],
}
# Its `scheduler/scheduler_config.json`.
Z_IMAGE_SCHEDULER = (
    "FlowMatchEulerDiscreteScheduler",
    {"num_train_timesteps": 1000, "shift": 3.0, "use_dynamic_shifting": False},
)

ARCHITECTURES = (
    Architecture(
        "z-image-turbo",
        "ZImagePipeline",
        {
            "transformer": Part("diffusers", "ZImageTransformer2DModel", Z_IMAGE_TRANSFORMER, 6.15e9),
            # Z-Image's model_index loads its Qwen3 without the LM head (it reads hidden states only).
            "text_encoder": Part("transformers", "Qwen3Model", QWEN3_4B, 4.02e9),
            "vae": Part("diffusers", "AutoencoderKL", FLUX1_VAE, 83.8e6),
        },
        Z_IMAGE_SCHEDULER,
        {"tokenizer": "qwen"},
        size=(1024, 1024),
        steps=8,
        guidance=0.0,
        catalog_id="z-image-turbo",
        family="zimage",
    ),
)
