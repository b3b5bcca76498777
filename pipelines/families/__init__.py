"""The model families on the model side, one folder a family (`pipelines/families/<family>/`): its
adapter (how to load and call its pipelines: its quirks), its tiny random-weight builder and its
full-size architectures. They are keyed by the names of the contract's family facts
(pipelines/contract/families.py), which say what the web side and the catalog know of each.

What every family shares is in base.py (the protocol and the diffusers implementation), the tiny
models' shared parts in tiny_parts.py, the full-size machinery in full_size.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipelines.contract.families import FamilyName
from pipelines.families import flux, flux2, flux_kontext, qwen_image, sd, sd3, sdxl, zimage
from pipelines.families.base import Family, FamilyAdapter
from pipelines.families.full_size import Architecture

# Each family's folder under its name in the contract's facts (a test holds the two to the same names).
_FOLDERS = {
    "sd": sd,
    "sdxl": sdxl,
    "flux": flux,
    "flux2": flux2,
    "zimage": zimage,
    "sd3": sd3,
    "qwen-image": qwen_image,
    "flux-kontext": flux_kontext,
}

FAMILIES: dict[FamilyName, FamilyAdapter] = {name: folder.ADAPTER for name, folder in _FOLDERS.items()}
# Each family's tiny random-weight pipeline, built in memory (pipelines/tiny.py saves it).
TINY_BUILDERS: dict[FamilyName, Callable[[], Any]] = {name: folder.build_tiny for name, folder in _FOLDERS.items()}
# The catalog's models at full size, for the GPU benchmark (scripts/bench_gpu.py).
ARCHITECTURES: dict[str, Architecture] = {
    arch.id: arch for folder in _FOLDERS.values() for arch in folder.ARCHITECTURES
}

__all__ = ["ARCHITECTURES", "FAMILIES", "TINY_BUILDERS", "Family", "FamilyAdapter"]
