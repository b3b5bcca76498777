"""The catalog's architectures at full size, as data, and a builder that makes them with random weights.

A benchmark box behind a firewall cannot download weights, and a pipeline's speed does not depend
on what its weights are (only its shapes, dtypes and kernels do). So each architecture here is its
published `config.json` files (transformer or UNet, text encoders, VAE, scheduler), and `build`
makes the pipeline from them: modules allocated on the meta device (no memory, no time), then
materialised straight on the target device in the target dtype with random values — seconds
on a GPU, not the minutes a 30 GB download and load takes.

Where the numbers come from: each config says so in its comment. They are the `config.json`
files of the hub repositories named there, read through public copies of them (conversion
scripts, loaders and tests that quote them verbatim), and the parameter counts they give are
checked against the published sizes in tests/test_architectures.py.

Tokenizers: the real vocabularies cannot be downloaded either. The pipelines get the small
byte-level tokenizers the tiny models use (pipelines/tiny.py, tiny_flux2.py): every id they make is
valid for the real embedding tables, and where a pipeline pads prompts to a fixed length (CLIP's 77,
FLUX.1's T5 at 256/512, FLUX.2's and Z-Image's Qwen3 at 512) the text encoder and the transformer see
exactly the shapes the real tokenizer gives. Only Qwen-Image pads to the longest prompt: there a
byte-level tokenizer makes about four tokens where the real one makes one, so its text encode
and joint attention see a few hundred more text tokens than with the real vocabulary (the
benchmark records the count).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# ---------------------------------------------------------------------------------------------
# Text encoders (transformers configs)
# ---------------------------------------------------------------------------------------------

# openai/clip-vit-large-patch14 text tower, as FLUX.1's and SDXL's `text_encoder/config.json`.
CLIP_L = {"vocab_size": 49408, "hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
          "num_attention_heads": 12, "max_position_embeddings": 77, "hidden_act": "quick_gelu",
          "projection_dim": 768, "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1}
# OpenCLIP ViT-bigG/14 text tower: SDXL's `text_encoder_2/config.json` (CLIPTextModelWithProjection).
CLIP_BIG_G = {"vocab_size": 49408, "hidden_size": 1280, "intermediate_size": 5120, "num_hidden_layers": 32,
              "num_attention_heads": 20, "max_position_embeddings": 77, "hidden_act": "gelu",
              "projection_dim": 1280, "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1}
# OpenCLIP ViT-H/14 text tower: stabilityai/sd-turbo (SD 2.1) `text_encoder/config.json`.
CLIP_H = {"vocab_size": 49408, "hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 23,
          "num_attention_heads": 16, "max_position_embeddings": 77, "hidden_act": "gelu",
          "projection_dim": 512, "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1}
# google/t5-v1_1-xxl encoder: FLUX.1's `text_encoder_2/config.json` (T5EncoderModel).
T5_XXL = {"vocab_size": 32128, "d_model": 4096, "d_kv": 64, "d_ff": 10240, "num_layers": 24, "num_heads": 64,
          "relative_attention_num_buckets": 32, "relative_attention_max_distance": 128,
          "feed_forward_proj": "gated-gelu", "is_gated_act": True, "dense_act_fn": "gelu_new",
          "layer_norm_epsilon": 1e-6, "pad_token_id": 0, "eos_token_id": 1, "decoder_start_token_id": 0,
          "tie_word_embeddings": False}
# Qwen/Qwen3-4B: the `text_encoder/config.json` of Tongyi-MAI/Z-Image-Turbo and of
# black-forest-labs/FLUX.2-klein-4B.
QWEN3_4B = {"vocab_size": 151936, "hidden_size": 2560, "intermediate_size": 9728, "num_hidden_layers": 36,
            "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128, "hidden_act": "silu",
            "max_position_embeddings": 40960, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
            "attention_bias": False, "tie_word_embeddings": True}
# Qwen/Qwen2.5-VL-7B-Instruct: Qwen/Qwen-Image `text_encoder/config.json`
# (Qwen2_5_VLForConditionalGeneration, its vision tower included: the pipeline loads it whole).
QWEN25_VL_7B = {
    "text_config": {"vocab_size": 152064, "hidden_size": 3584, "intermediate_size": 18944,
                    "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4,
                    "hidden_act": "silu", "max_position_embeddings": 128000, "rms_norm_eps": 1e-6,
                    "rope_theta": 1000000.0, "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
                    "tie_word_embeddings": False},
    "vision_config": {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
                      "out_hidden_size": 3584, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2,
                      "window_size": 112, "fullatt_block_indexes": [7, 15, 23, 31], "hidden_act": "silu",
                      "in_channels": 3},
    "image_token_id": 151655, "video_token_id": 151656, "vision_start_token_id": 151652,
    "vision_end_token_id": 151653, "tie_word_embeddings": False,
}

# ---------------------------------------------------------------------------------------------
# VAEs (diffusers configs)
# ---------------------------------------------------------------------------------------------

_KL_BLOCKS = {"block_out_channels": [128, 256, 512, 512], "layers_per_block": 2, "norm_num_groups": 32,
              "down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4,
              "in_channels": 3, "out_channels": 3, "act_fn": "silu"}
# black-forest-labs/FLUX.1-schnell `vae/config.json`; Z-Image-Turbo ships the same VAE.
FLUX1_VAE = {**_KL_BLOCKS, "latent_channels": 16, "scaling_factor": 0.3611, "shift_factor": 0.1159,
             "use_quant_conv": False, "use_post_quant_conv": False, "sample_size": 1024, "force_upcast": True}
# stabilityai/sdxl-turbo `vae/config.json` (SDXL's VAE).
SDXL_VAE = {**_KL_BLOCKS, "latent_channels": 4, "scaling_factor": 0.13025, "sample_size": 1024, "force_upcast": True}
# stabilityai/sd-turbo `vae/config.json` (SD 2.x's VAE).
SD2_VAE = {**_KL_BLOCKS, "latent_channels": 4, "scaling_factor": 0.18215, "sample_size": 768}
# black-forest-labs/FLUX.2-klein-4B `vae/config.json` (shared by every FLUX.2).
FLUX2_VAE = {**_KL_BLOCKS, "latent_channels": 32, "patch_size": [2, 2], "batch_norm_eps": 1e-4,
             "batch_norm_momentum": 0.1, "use_quant_conv": True, "use_post_quant_conv": True, "sample_size": 1024}
# Qwen/Qwen-Image `vae/config.json` (a Wan-style causal 3D VAE run on one frame).
QWEN_IMAGE_VAE = {"base_dim": 96, "z_dim": 16, "dim_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_scales": [],
                  "temperal_downsample": [False, True, True], "dropout": 0.0}

# ---------------------------------------------------------------------------------------------
# Denoisers
# ---------------------------------------------------------------------------------------------

# black-forest-labs/FLUX.1-schnell and FLUX.1-dev `transformer/config.json`; dev adds the guidance embedder.
FLUX1_TRANSFORMER = {"patch_size": 1, "in_channels": 64, "num_layers": 19, "num_single_layers": 38,
                     "attention_head_dim": 128, "num_attention_heads": 24, "joint_attention_dim": 4096,
                     "pooled_projection_dim": 768, "guidance_embeds": False, "axes_dims_rope": [16, 56, 56]}
# black-forest-labs/FLUX.2-klein-4B `transformer/config.json`.
FLUX2_KLEIN_4B_TRANSFORMER = {"patch_size": 1, "in_channels": 128, "out_channels": None, "num_layers": 5,
                              "num_single_layers": 20, "attention_head_dim": 128, "num_attention_heads": 24,
                              "joint_attention_dim": 7680, "timestep_guidance_channels": 256, "mlp_ratio": 3.0,
                              "axes_dims_rope": [32, 32, 32, 32], "rope_theta": 2000, "eps": 1e-6,
                              "guidance_embeds": False}
# stabilityai/sdxl-turbo `unet/config.json` (SDXL base's UNet).
SDXL_UNET = {"sample_size": 64, "in_channels": 4, "out_channels": 4, "layers_per_block": 2,
             "block_out_channels": [320, 640, 1280], "attention_head_dim": [5, 10, 20],
             "transformer_layers_per_block": [1, 2, 10], "cross_attention_dim": 2048,
             "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
             "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
             "addition_embed_type": "text_time", "addition_time_embed_dim": 256,
             "projection_class_embeddings_input_dim": 2816, "use_linear_projection": True, "norm_num_groups": 32}
# stabilityai/sd-turbo `unet/config.json` (SD 2.1's UNet).
SD2_UNET = {"sample_size": 64, "in_channels": 4, "out_channels": 4, "layers_per_block": 2,
            "block_out_channels": [320, 640, 1280, 1280], "attention_head_dim": [5, 10, 20, 20],
            "cross_attention_dim": 1024, "use_linear_projection": True, "norm_num_groups": 32,
            "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
            "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]}
# Tongyi-MAI/Z-Image-Turbo `transformer/config.json`.
Z_IMAGE_TRANSFORMER = {"all_patch_size": [2], "all_f_patch_size": [1], "in_channels": 16, "dim": 3840,
                       "n_layers": 30, "n_refiner_layers": 2, "n_heads": 30, "n_kv_heads": 30, "norm_eps": 1e-5,
                       "qk_norm": True, "cap_feat_dim": 2560, "rope_theta": 256.0, "t_scale": 1000.0,
                       "axes_dims": [32, 48, 48], "axes_lens": [1536, 512, 512]}
# Qwen/Qwen-Image `transformer/config.json`.
QWEN_IMAGE_TRANSFORMER = {"patch_size": 2, "in_channels": 64, "out_channels": 16, "num_layers": 60,
                          "attention_head_dim": 128, "num_attention_heads": 24, "joint_attention_dim": 3584,
                          "guidance_embeds": False, "axes_dims_rope": [16, 56, 56]}

# ---------------------------------------------------------------------------------------------
# Schedulers (each repository's `scheduler/scheduler_config.json`)
# ---------------------------------------------------------------------------------------------

_TURBO_EULER = ("EulerDiscreteScheduler", {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
                                           "beta_schedule": "scaled_linear", "prediction_type": "epsilon",
                                           "timestep_spacing": "trailing", "steps_offset": 1})
_FLUX_SCHNELL_SCHEDULER = ("FlowMatchEulerDiscreteScheduler", {"num_train_timesteps": 1000, "shift": 1.0,
                                                               "use_dynamic_shifting": False})
_FLUX_DEV_SCHEDULER = ("FlowMatchEulerDiscreteScheduler", {"num_train_timesteps": 1000, "shift": 3.0,
                                                           "use_dynamic_shifting": True, "base_shift": 0.5,
                                                           "max_shift": 1.15, "base_image_seq_len": 256,
                                                           "max_image_seq_len": 4096})
_FLUX2_SCHEDULER = ("FlowMatchEulerDiscreteScheduler", {**_FLUX_DEV_SCHEDULER[1], "time_shift_type": "exponential"})
_Z_IMAGE_SCHEDULER = ("FlowMatchEulerDiscreteScheduler", {"num_train_timesteps": 1000, "shift": 3.0,
                                                          "use_dynamic_shifting": False})
_QWEN_IMAGE_SCHEDULER = ("FlowMatchEulerDiscreteScheduler", {
    "num_train_timesteps": 1000, "shift": 1.0, "use_dynamic_shifting": True, "base_shift": 0.5, "max_shift": 0.9,
    "base_image_seq_len": 256, "max_image_seq_len": 8192, "time_shift_type": "exponential", "shift_terminal": 0.02})


@dataclass(frozen=True)
class Part:
    """One pipeline component: its diffusers/transformers class and config."""

    library: str  # "diffusers" or "transformers"
    class_name: str
    config: dict[str, Any]
    # The published parameter count (for the tests), where a model card or paper states one.
    published_parameters: float | None = None


@dataclass(frozen=True)
class Architecture:
    """A catalog model at full size: its pipeline class, parts, tokenizers and how it is called."""

    id: str
    pipeline: str
    parts: dict[str, Part]
    scheduler: tuple[str, dict[str, Any]]
    # Each tokenizer slot and the kind of small tokenizer it gets: "clip", "t5" or "qwen".
    tokenizers: dict[str, str]
    size: tuple[int, int]
    steps: int
    guidance: float
    # The catalog id and family the server mode serves it as, where the catalog has it.
    catalog_id: str | None = None
    family: str | None = None
    pipeline_options: dict[str, Any] = field(default_factory=dict)
    call_options: dict[str, Any] = field(default_factory=dict)


def _clip(config: dict[str, Any], with_projection: bool, published: float) -> Part:
    return Part("transformers", "CLIPTextModelWithProjection" if with_projection else "CLIPTextModel", config, published)


_FLUX1_PARTS = {
    "transformer": Part("diffusers", "FluxTransformer2DModel", FLUX1_TRANSFORMER, 11.9e9),
    "text_encoder": _clip(CLIP_L, False, 123.1e6),
    "text_encoder_2": Part("transformers", "T5EncoderModel", T5_XXL, 4.76e9),
    "vae": Part("diffusers", "AutoencoderKL", FLUX1_VAE, 83.8e6),
}

ARCHITECTURES: dict[str, Architecture] = {arch.id: arch for arch in (
    Architecture(
        "flux-schnell", "FluxPipeline", _FLUX1_PARTS, _FLUX_SCHNELL_SCHEDULER, {"tokenizer": "clip", "tokenizer_2": "t5"},
        size=(1024, 1024), steps=4, guidance=0.0, catalog_id="flux-schnell", family="flux",
        call_options={"max_sequence_length": 256}),
    Architecture(
        "flux-dev", "FluxPipeline",
        {**_FLUX1_PARTS, "transformer": Part("diffusers", "FluxTransformer2DModel",
                                             {**FLUX1_TRANSFORMER, "guidance_embeds": True}, 11.9e9)},
        _FLUX_DEV_SCHEDULER, {"tokenizer": "clip", "tokenizer_2": "t5"},
        size=(1024, 1024), steps=28, guidance=3.5, catalog_id="flux-dev", family="flux",
        call_options={"max_sequence_length": 512}),
    Architecture(
        "flux2-klein", "Flux2KleinPipeline",
        {"transformer": Part("diffusers", "Flux2Transformer2DModel", FLUX2_KLEIN_4B_TRANSFORMER, 3.9e9),
         "text_encoder": Part("transformers", "Qwen3ForCausalLM", QWEN3_4B, 4.02e9),
         "vae": Part("diffusers", "AutoencoderKLFlux2", FLUX2_VAE, 84.0e6)},
        _FLUX2_SCHEDULER, {"tokenizer": "qwen"}, size=(1024, 1024), steps=4, guidance=1.0,
        catalog_id="flux2-klein", family="flux2", pipeline_options={"is_distilled": True}),
    Architecture(
        "sdxl-turbo", "StableDiffusionXLPipeline",
        {"unet": Part("diffusers", "UNet2DConditionModel", SDXL_UNET, 2.567e9),
         "text_encoder": _clip(CLIP_L, False, 123.1e6),
         "text_encoder_2": _clip(CLIP_BIG_G, True, 694.7e6),
         "vae": Part("diffusers", "AutoencoderKL", SDXL_VAE, 83.7e6)},
        _TURBO_EULER, {"tokenizer": "clip", "tokenizer_2": "clip"}, size=(512, 512), steps=4, guidance=0.0,
        catalog_id="sdxl-turbo", family="sdxl"),
    Architecture(
        "sd-turbo", "StableDiffusionPipeline",
        {"unet": Part("diffusers", "UNet2DConditionModel", SD2_UNET, 865.9e6),
         "text_encoder": _clip(CLIP_H, False, 340.4e6),
         "vae": Part("diffusers", "AutoencoderKL", SD2_VAE, 83.7e6)},
        _TURBO_EULER, {"tokenizer": "clip"}, size=(512, 512), steps=1, guidance=0.0,
        catalog_id="sd-turbo", family="sd",
        pipeline_options={"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}),
    Architecture(
        "z-image-turbo", "ZImagePipeline",
        {"transformer": Part("diffusers", "ZImageTransformer2DModel", Z_IMAGE_TRANSFORMER, 6.15e9),
         # Z-Image's model_index loads its Qwen3 without the LM head (it reads hidden states only).
         "text_encoder": Part("transformers", "Qwen3Model", QWEN3_4B, 4.02e9),
         "vae": Part("diffusers", "AutoencoderKL", FLUX1_VAE, 83.8e6)},
        _Z_IMAGE_SCHEDULER, {"tokenizer": "qwen"}, size=(1024, 1024), steps=8, guidance=0.0,
        catalog_id="z-image-turbo", family="zimage"),
    Architecture(
        "qwen-image", "QwenImagePipeline",
        {"transformer": Part("diffusers", "QwenImageTransformer2DModel", QWEN_IMAGE_TRANSFORMER, 20.4e9),
         "text_encoder": Part("transformers", "Qwen2_5_VLForConditionalGeneration", QWEN25_VL_7B, 8.29e9),
         "vae": Part("diffusers", "AutoencoderKLQwenImage", QWEN_IMAGE_VAE, 126.9e6)},
        _QWEN_IMAGE_SCHEDULER, {"tokenizer": "qwen"}, size=(1024, 1024), steps=50, guidance=1.0,
        catalog_id="qwen-image", family="qwen-image", call_options={"true_cfg_scale": 4.0, "negative_prompt": " "}),
)}


def _config_class(class_name: str) -> Any:
    import transformers

    return {
        "CLIPTextModel": transformers.CLIPTextConfig,
        "CLIPTextModelWithProjection": transformers.CLIPTextConfig,
        "T5EncoderModel": transformers.T5Config,
        "Qwen3ForCausalLM": transformers.Qwen3Config,
        "Qwen3Model": transformers.Qwen3Config,
        "Qwen2_5_VLForConditionalGeneration": transformers.Qwen2_5_VLConfig,
    }[class_name]


def _empty_module(part: Part) -> Any:
    """The part's module with its parameters on the meta device (no memory); buffers stay real on the
    CPU, because modules compute some of them in __init__ (position ids, rotary frequencies)."""
    from accelerate import init_empty_weights

    with init_empty_weights(include_buffers=False):
        if part.library == "diffusers":
            import diffusers

            return getattr(diffusers, part.class_name).from_config(part.config)
        import transformers

        config = _config_class(part.class_name)(**part.config)
        module = getattr(transformers, part.class_name)(config)
    # Outside the context, whose parameter registration would make each tied tensor a new one:
    # T5's encoder embedding is its shared one; Qwen3-4B's head is its embedding.
    module.tie_weights()
    return module


def parameter_count(module: Any) -> int:
    """Distinct parameters (tied ones counted once), meta or real."""
    return sum(p.numel() for p in {id(p): p for p in module.parameters()}.values())


def materialise(module: Any, device: str, dtype: Any, seed: int = 0) -> Any:
    """Give an empty module real storage on `device` in `dtype`, with random values.

    Weights are drawn N(0, 1/fan_in), which keeps activations in range through 60 layers in bf16;
    norm scales are 1 and biases 0. The values are noise: what is measured is speed, not images.
    """
    import torch

    buffers = {name: buffer.clone() for name, buffer in module.named_buffers()}
    # On meta: free. torch's own `to`, past diffusers' (which warns about fp32 modules a real load keeps).
    torch.nn.Module.to(module, dtype=dtype)
    buffers = {name: buffer.to(dtype) if buffer.is_floating_point() else buffer for name, buffer in buffers.items()}
    module.to_empty(device=device)
    generator = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        for name, buffer in module.named_buffers():
            buffer.copy_(buffers[name])
        for name, parameter in module.named_parameters():
            if parameter.ndim <= 1:
                parameter.fill_(0.0 if name.endswith("bias") else 1.0)
            else:
                fan_in = parameter[0].numel()
                parameter.normal_(0.0, fan_in**-0.5, generator=generator)
    if hasattr(module, "tie_weights"):  # to_empty unties shared tensors (Qwen3's embedding and head)
        module.tie_weights()
    return module.eval()


def _tokenizer(kind: str) -> Any:
    from pipelines.tiny import _clip_tokenizer, _t5_tokenizer
    from pipelines.tiny_flux2 import _qwen_tokenizer

    return {"clip": _clip_tokenizer, "t5": _t5_tokenizer, "qwen": _qwen_tokenizer}[kind]()


def build(arch: Architecture | str, device: str = "meta", dtype: Any = None, seed: int = 0) -> Any:
    """The architecture's diffusers pipeline. On "meta" nothing is allocated (for counting and
    checking shapes); on a real device every weight is made there, in `dtype`, with random values."""
    import diffusers
    import torch

    arch = ARCHITECTURES[arch] if isinstance(arch, str) else arch
    dtype = dtype or torch.bfloat16
    components: dict[str, Any] = {}
    for index, (name, part) in enumerate(arch.parts.items()):
        module = _empty_module(part)
        if device != "meta":
            module = materialise(module, device, dtype, seed + index)
        components[name] = module
    for name, kind in arch.tokenizers.items():
        components[name] = _tokenizer(kind)
    scheduler_class, scheduler_config = arch.scheduler
    components["scheduler"] = getattr(diffusers, scheduler_class).from_config(scheduler_config)
    pipe = getattr(diffusers, arch.pipeline)(**components, **arch.pipeline_options)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def parameter_counts(pipe: Any) -> dict[str, int]:
    """Each torch module of the pipeline and its parameter count."""
    import torch

    return {name: parameter_count(module) for name, module in pipe.components.items()
            if isinstance(module, torch.nn.Module)}
