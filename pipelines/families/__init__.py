"""Each model family's quirks in diffusers, one module a family; FAMILIES maps the catalog's
family names onto them."""

from __future__ import annotations

from pipelines.contract.catalog import FamilyName
from pipelines.families.base import Family
from pipelines.families.flux import FLUX
from pipelines.families.flux2 import FLUX2
from pipelines.families.flux_kontext import FLUX_KONTEXT
from pipelines.families.qwen_image import QWEN_IMAGE
from pipelines.families.sd import SD
from pipelines.families.sd3 import SD3
from pipelines.families.sdxl import SDXL
from pipelines.families.zimage import ZIMAGE

FAMILIES: dict[FamilyName, Family] = {
    "sd": SD,
    "sdxl": SDXL,
    "flux": FLUX,
    "flux2": FLUX2,
    "zimage": ZIMAGE,
    "sd3": SD3,
    "qwen-image": QWEN_IMAGE,
    "flux-kontext": FLUX_KONTEXT,
}

__all__ = ["FAMILIES", "Family"]
