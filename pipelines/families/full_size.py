"""The catalog's architectures at full size: the shared machinery (parts, architectures, a builder that
makes them with random weights) and the configs several families share. Each family's own
architectures are in its folder (`pipelines/families/<family>/architecture.py`); `pipelines.families`
collects them in ARCHITECTURES.

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
byte-level tokenizers the tiny models use (pipelines/families/tiny_parts.py): every id they make is
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

from pipelines.families.tiny_parts import clip_tokenizer, qwen3_tokenizer, t5_tokenizer

# ---------------------------------------------------------------------------------------------
# Text encoders (transformers configs)
# ---------------------------------------------------------------------------------------------

# openai/clip-vit-large-patch14 text tower, as FLUX.1's and SDXL's `text_encoder/config.json`.
CLIP_L = {
    "vocab_size": 49408,
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "projection_dim": 768,
    "bos_token_id": 0,
    "eos_token_id": 2,
    "pad_token_id": 1,
}
# google/t5-v1_1-xxl encoder: FLUX.1's `text_encoder_2/config.json` (T5EncoderModel).
T5_XXL = {
    "vocab_size": 32128,
    "d_model": 4096,
    "d_kv": 64,
    "d_ff": 10240,
    "num_layers": 24,
    "num_heads": 64,
    "relative_attention_num_buckets": 32,
    "relative_attention_max_distance": 128,
    "feed_forward_proj": "gated-gelu",
    "is_gated_act": True,
    "dense_act_fn": "gelu_new",
    "layer_norm_epsilon": 1e-6,
    "pad_token_id": 0,
    "eos_token_id": 1,
    "decoder_start_token_id": 0,
    "tie_word_embeddings": False,
}
# Qwen/Qwen3-4B: the `text_encoder/config.json` of Tongyi-MAI/Z-Image-Turbo and of
# black-forest-labs/FLUX.2-klein-4B.
QWEN3_4B = {
    "vocab_size": 151936,
    "hidden_size": 2560,
    "intermediate_size": 9728,
    "num_hidden_layers": 36,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "hidden_act": "silu",
    "max_position_embeddings": 40960,
    "rms_norm_eps": 1e-6,
    "rope_theta": 1000000.0,
    "attention_bias": False,
    "tie_word_embeddings": True,
}
# ---------------------------------------------------------------------------------------------
# VAEs (diffusers configs)
# ---------------------------------------------------------------------------------------------

KL_BLOCKS = {
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "in_channels": 3,
    "out_channels": 3,
    "act_fn": "silu",
}
# black-forest-labs/FLUX.1-schnell `vae/config.json`; Z-Image-Turbo ships the same VAE.
FLUX1_VAE = {
    **KL_BLOCKS,
    "latent_channels": 16,
    "scaling_factor": 0.3611,
    "shift_factor": 0.1159,
    "use_quant_conv": False,
    "use_post_quant_conv": False,
    "sample_size": 1024,
    "force_upcast": True,
}
# ---------------------------------------------------------------------------------------------
# Schedulers (each repository's `scheduler/scheduler_config.json`)
# ---------------------------------------------------------------------------------------------

# sd-turbo's and sdxl-turbo's.
TURBO_EULER = (
    "EulerDiscreteScheduler",
    {
        "num_train_timesteps": 1000,
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "prediction_type": "epsilon",
        "timestep_spacing": "trailing",
        "steps_offset": 1,
    },
)


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


def clip(config: dict[str, Any], with_projection: bool, published: float) -> Part:
    """A CLIP text tower as a part (with its projection: CLIPTextModelWithProjection)."""
    return Part(
        "transformers", "CLIPTextModelWithProjection" if with_projection else "CLIPTextModel", config, published
    )


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


def empty_module(part: Part) -> Any:
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
    return {"clip": clip_tokenizer, "t5": t5_tokenizer, "qwen": qwen3_tokenizer}[kind]()


def build(arch: Architecture, device: str = "meta", dtype: Any = None, seed: int = 0) -> Any:
    """The architecture's diffusers pipeline. On "meta" nothing is allocated (for counting and
    checking shapes); on a real device every weight is made there, in `dtype`, with random values."""
    import diffusers
    import torch

    dtype = dtype or torch.bfloat16
    components: dict[str, Any] = {}
    for index, (name, part) in enumerate(arch.parts.items()):
        module = empty_module(part)
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

    return {
        name: parameter_count(module) for name, module in pipe.components.items() if isinstance(module, torch.nn.Module)
    }
