"""Qwen-Image at full size, from its published configs (see full_size.py)."""

from __future__ import annotations

from pipelines.families.full_size import Architecture, Part

# Qwen/Qwen2.5-VL-7B-Instruct: Qwen/Qwen-Image `text_encoder/config.json`
# (Qwen2_5_VLForConditionalGeneration, its vision tower included: the pipeline loads it whole).
QWEN25_VL_7B = {
    "text_config": {
        "vocab_size": 152064,
        "hidden_size": 3584,
        "intermediate_size": 18944,
        "num_hidden_layers": 28,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "hidden_act": "silu",
        "max_position_embeddings": 128000,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
        "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
        "tie_word_embeddings": False,
    },
    "vision_config": {
        "depth": 32,
        "hidden_size": 1280,
        "intermediate_size": 3420,
        "num_heads": 16,
        "out_hidden_size": 3584,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 112,
        "fullatt_block_indexes": [7, 15, 23, 31],
        "hidden_act": "silu",
        "in_channels": 3,
    },
    "image_token_id": 151655,
    "video_token_id": 151656,
    "vision_start_token_id": 151652,
    "vision_end_token_id": 151653,
    "tie_word_embeddings": False,
}
# Qwen/Qwen-Image `vae/config.json` (a Wan-style causal 3D VAE run on one frame).
QWEN_IMAGE_VAE = {
    "base_dim": 96,
    "z_dim": 16,
    "dim_mult": [1, 2, 4, 4],
    "num_res_blocks": 2,
    "attn_scales": [],
    "temperal_downsample": [False, True, True],
    "dropout": 0.0,
}
# Qwen/Qwen-Image `transformer/config.json`.
QWEN_IMAGE_TRANSFORMER = {
    "patch_size": 2,
    "in_channels": 64,
    "out_channels": 16,
    "num_layers": 60,
    "attention_head_dim": 128,
    "num_attention_heads": 24,
    "joint_attention_dim": 3584,
    "guidance_embeds": False,
    "axes_dims_rope": [16, 56, 56],
}
# Its `scheduler/scheduler_config.json`: exponential resolution-dependent shift.
QWEN_IMAGE_SCHEDULER = (
    "FlowMatchEulerDiscreteScheduler",
    {
        "num_train_timesteps": 1000,
        "shift": 1.0,
        "use_dynamic_shifting": True,
        "base_shift": 0.5,
        "max_shift": 0.9,
        "base_image_seq_len": 256,
        "max_image_seq_len": 8192,
        "time_shift_type": "exponential",
        "shift_terminal": 0.02,
    },
)

ARCHITECTURES = (
    Architecture(
        "qwen-image",
        "QwenImagePipeline",
        {
            "transformer": Part("diffusers", "QwenImageTransformer2DModel", QWEN_IMAGE_TRANSFORMER, 20.4e9),
            "text_encoder": Part("transformers", "Qwen2_5_VLForConditionalGeneration", QWEN25_VL_7B, 8.29e9),
            "vae": Part("diffusers", "AutoencoderKLQwenImage", QWEN_IMAGE_VAE, 126.9e6),
        },
        QWEN_IMAGE_SCHEDULER,
        {"tokenizer": "qwen"},
        size=(1024, 1024),
        steps=50,
        guidance=1.0,
        catalog_id="qwen-image",
        family="qwen-image",
        call_options={"true_cfg_scale": 4.0, "negative_prompt": " "},
    ),
)
