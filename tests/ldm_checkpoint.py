"""A diffusers Stable Diffusion 2.x folder written back as one A1111-style `.safetensors` file
(the original LDM layout: UNet, VAE and OpenCLIP text encoder under their old names), so the
single-file path is tested on a real checkpoint layout with tiny weights.

The names follow diffusers' own scripts/convert_diffusers_to_original_stable_diffusion.py and
the mapping tables in diffusers.loaders.single_file_utils, generalised to any number of levels
and layers per block (the tiny models have two levels of one layer).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

_RESNET = (
    ("norm1", "in_layers.0"),
    ("conv1", "in_layers.2"),
    ("norm2", "out_layers.0"),
    ("conv2", "out_layers.3"),
    ("time_emb_proj", "emb_layers.1"),
    ("conv_shortcut", "skip_connection"),
)
_UNET_TOP = {
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "conv_in": "input_blocks.0.0",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
}


def _unet_prefixes(config: dict[str, Any]) -> dict[str, str]:
    """diffusers module prefix -> LDM prefix, for every block of this UNet."""
    per_level = config["layers_per_block"] + 1
    levels = len(config["block_out_channels"])
    names = {f"{key}.": f"{value}." for key, value in _UNET_TOP.items()}
    for i, kind in enumerate(config["down_block_types"]):
        for j in range(config["layers_per_block"]):
            names[f"down_blocks.{i}.resnets.{j}."] = f"input_blocks.{per_level * i + j + 1}.0."
            if "CrossAttn" in kind:
                names[f"down_blocks.{i}.attentions.{j}."] = f"input_blocks.{per_level * i + j + 1}.1."
        if i < levels - 1:
            names[f"down_blocks.{i}.downsamplers.0.conv."] = f"input_blocks.{per_level * (i + 1)}.0.op."
    names["mid_block.resnets.0."], names["mid_block.attentions.0."] = "middle_block.0.", "middle_block.1."
    names["mid_block.resnets.1."] = "middle_block.2."
    for i, kind in enumerate(config["up_block_types"]):
        for j in range(per_level):
            names[f"up_blocks.{i}.resnets.{j}."] = f"output_blocks.{per_level * i + j}.0."
            if "CrossAttn" in kind:
                names[f"up_blocks.{i}.attentions.{j}."] = f"output_blocks.{per_level * i + j}.1."
        if i < levels - 1:
            slot = 2 if "CrossAttn" in kind else 1
            names[f"up_blocks.{i}.upsamplers.0."] = f"output_blocks.{per_level * i + per_level - 1}.{slot}."
    return names


def _renamed(key: str, prefixes: dict[str, str], unet: bool = True) -> str:
    prefix = max((p for p in prefixes if key.startswith(p)), key=len)
    rest = key[len(prefix) :]
    if unet and "resnets" in prefix:  # the VAE's resnets keep their inner names
        for new, old in _RESNET:
            rest = rest.replace(new, old)
    return prefixes[prefix] + rest


def _vae_prefixes(levels: int, layers: int) -> dict[str, str]:
    names = {
        "encoder.conv_norm_out.": "encoder.norm_out.",
        "decoder.conv_norm_out.": "decoder.norm_out.",
        "encoder.": "encoder.",
        "decoder.": "decoder.",
        "quant_conv.": "quant_conv.",
        "post_quant_conv.": "post_quant_conv.",
    }
    for i in range(levels):
        for j in range(layers):
            names[f"encoder.down_blocks.{i}.resnets.{j}."] = f"encoder.down.{i}.block.{j}."
        for j in range(layers + 1):
            names[f"decoder.up_blocks.{i}.resnets.{j}."] = f"decoder.up.{levels - 1 - i}.block.{j}."
        names[f"encoder.down_blocks.{i}.downsamplers.0."] = f"encoder.down.{i}.downsample."
        names[f"decoder.up_blocks.{i}.upsamplers.0."] = f"decoder.up.{levels - 1 - i}.upsample."
    for side in ("encoder", "decoder"):
        for j in range(2):
            names[f"{side}.mid_block.resnets.{j}."] = f"{side}.mid.block_{j + 1}."
    return names


def _open_clip(state: dict[str, Any]) -> dict[str, Any]:
    import torch

    out: dict[str, Any] = {}
    fixed = {
        "text_model.embeddings.position_embedding.weight": "positional_embedding",
        "text_model.embeddings.token_embedding.weight": "token_embedding.weight",
        "text_model.final_layer_norm.weight": "ln_final.weight",
        "text_model.final_layer_norm.bias": "ln_final.bias",
    }
    renames = (
        ("text_model.encoder.layers.", "transformer.resblocks."),
        ("layer_norm1", "ln_1"),
        ("layer_norm2", "ln_2"),
        (".mlp.fc1.", ".mlp.c_fc."),
        (".mlp.fc2.", ".mlp.c_proj."),
        (".self_attn.", ".attn."),
    )
    fused: dict[str, dict[str, Any]] = {}
    for key, value in state.items():
        # transformers 5.6 and later save CLIPTextModel without its `text_model.` wrapper.
        key = key if key.startswith("text_model.") else f"text_model.{key}"
        if key in fixed:
            out[fixed[key]] = value
            continue
        if key.startswith("text_model.embeddings.position_ids"):
            continue
        for old, new in renames:
            key = key.replace(old, new)
        head, _, tail = key.rpartition(".")
        if head.endswith(("q_proj", "k_proj", "v_proj")):
            fused.setdefault(f"{head[: -len('q_proj')]}in_proj_{tail}", {})[head[-6]] = value
        else:
            out[key] = value
    for key, parts in fused.items():
        out[key] = torch.cat([parts["q"], parts["k"], parts["v"]])
    return out


def write_sd2_checkpoint(folder: Path, dest: Path) -> None:
    """The diffusers SD folder at `folder` as one LDM-layout .safetensors file at `dest`."""
    from safetensors.torch import load_file, save_file

    unet_config = json.loads((folder / "unet" / "config.json").read_text())
    vae_config = json.loads((folder / "vae" / "config.json").read_text())
    unet = load_file(folder / "unet" / "diffusion_pytorch_model.safetensors")
    vae = load_file(folder / "vae" / "diffusion_pytorch_model.safetensors")
    text = load_file(folder / "text_encoder" / "model.safetensors")
    unet_names = _unet_prefixes(unet_config)
    vae_names = _vae_prefixes(len(vae_config["block_out_channels"]), vae_config["layers_per_block"])
    state = {f"model.diffusion_model.{_renamed(k, unet_names)}": v for k, v in unet.items()}
    for key, value in vae.items():
        renamed = _renamed(key, vae_names, unet=False)
        for old, new in (("conv_shortcut", "nin_shortcut"),):
            renamed = renamed.replace(old, new) if ".block." in renamed else renamed
        state[f"first_stage_model.{renamed}"] = value
    state.update({f"cond_stage_model.model.{k}": v for k, v in _open_clip(text).items()})
    save_file({k: v.contiguous() for k, v in state.items()}, dest)
