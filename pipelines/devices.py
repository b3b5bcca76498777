"""Which device and dtype a pipeline runs on."""

from __future__ import annotations

from typing import Any


class DeviceUnavailable(RuntimeError):
    """A device was asked for by name and this machine has none (no CUDA, no MPS)."""


def pick_device(preference: str = "auto") -> str:
    if preference == "cpu":  # no need to import torch (seconds) to know that
        return "cpu"
    import torch

    if preference.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceUnavailable(
            f"device {preference!r} was asked for, but torch sees no CUDA GPU here "
            f"(torch {torch.__version__}); use --device cpu or auto"
        )
    if preference == "mps" and not torch.backends.mps.is_available():
        raise DeviceUnavailable(
            "device 'mps' was asked for, but this machine has no Apple GPU; use --device cpu or auto"
        )
    if preference != "auto":
        return preference
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def pick_dtype(device: str) -> Any:
    import torch

    if device.startswith("cuda"):
        # bf16 keeps Flux (and SDXL's VAE) clear of fp16 overflow where the card has it.
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.startswith("mps"):
        return torch.float16
    return torch.float32
