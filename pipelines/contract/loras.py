"""LoRAs: which adapters a server offers, for which models, and what a request's `lora` resolves to.

Part of the contract: the web side checks a request's LoRAs (name, scale, family) before any work
is queued, and the Job carries each one resolved (where its weights are, at what scale), so the
model side decides nothing. Reads only file names and safetensors headers (JSON): no torch.

Where LoRAs come from:
- files in the LoRA folder (`IMAGEGEN_LORA_DIR`): `name.safetensors` at the top (its family is
  read from the file) or in a subfolder named after a family or a model id (`sdxl/pixel.safetensors`
  is usable with every SDXL model, `flux-schnell/x.safetensors` with that model only);
- a catalog entry's `loras` (name → `hub:org/repo[@revision][/file.safetensors]`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipelines.contract.catalog import FAMILY_NAMES, ModelSpec
from pipelines.contract.errors import invalid
from pipelines.contract.job import LoraUse
from pipelines.contract.safetensors_header import NotSafetensors, read_header

LORA_SUFFIX = ".safetensors"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class Lora:
    """One LoRA the server offers. `family`/`model` say what it is for; None: not known from the
    file (checked when it is first loaded into a model)."""

    name: str
    source: str
    family: str | None = None
    model: str | None = None

    def fits(self, spec: ModelSpec) -> bool:
        if self.model is not None:
            return self.model == spec.id
        return self.family is None or self.family == spec.family


# kohya's trainers record the base model in the file's metadata.
_KOHYA_BASES = {"sd_v2": "sd", "sd_2": "sd", "sdxl": "sdxl", "flux": "flux", "sd3": "sd3"}


def family_of_file(path: Path) -> str | None:
    """The family a LoRA file was trained for, where the file says: kohya's `ss_base_model_version`
    or Stability's `modelspec.architecture` in the metadata. None when it does not say."""
    try:
        metadata = read_header(path).get("__metadata__") or {}
    except NotSafetensors:
        return None
    base = str(metadata.get("ss_base_model_version") or metadata.get("modelspec.architecture") or "").lower()
    if base.startswith("sd_v1") or base.startswith("stable-diffusion-v1"):
        return "sd1"  # a family no catalog model has: usable with none
    for prefix, family in _KOHYA_BASES.items():
        if base.startswith(prefix) or base.startswith(f"stable-diffusion-{prefix.removeprefix('sd_')}"):
            return family
    return None


@dataclass(frozen=True)
class LoraLibrary:
    """The LoRAs one server offers (the folder is read on each lookup: a file dropped in is usable
    at once, without a restart)."""

    folder: Path | None = None

    @property
    def enabled(self) -> bool:
        return self.folder is not None

    def _files(self) -> list[Lora]:
        if self.folder is None or not self.folder.is_dir():
            return []
        found = [
            Lora(path.stem, str(path), family_of_file(path)) for path in sorted(self.folder.glob(f"*{LORA_SUFFIX}"))
        ]
        for sub in sorted(p for p in self.folder.iterdir() if p.is_dir()):
            scope = {"family": sub.name} if sub.name in FAMILY_NAMES else {"model": sub.name}
            found += [Lora(path.stem, str(path), **scope) for path in sorted(sub.glob(f"*{LORA_SUFFIX}"))]
        return [lora for lora in found if _NAME.match(lora.name)]

    def offered(self, spec: ModelSpec) -> list[Lora]:
        """The LoRAs usable with `spec`: its catalog entries, then the folder's that fit it."""
        catalog = [Lora(name, source, model=spec.id) for name, source in spec.loras.items()]
        return catalog + [lora for lora in self._files() if lora.fits(spec)]

    def resolve(self, spec: ModelSpec, asked: Sequence[tuple[str, float]]) -> tuple[LoraUse, ...]:
        """A request's `lora` list, as the Job carries it: each name checked against what `spec` is
        offered. Errors are 400s on `lora`. How many there are and their scales are bounded before
        this, once, by the web side's request schema."""
        if not asked:
            return ()
        if not self.enabled and not spec.loras:
            raise invalid(
                "lora",
                "LoRA is not enabled on this server: start it with IMAGEGEN_LORA_DIR set to a "
                "folder of .safetensors LoRAs (see the README's LoRA section).",
                code="lora_disabled",
            )
        names = [name for name, _ in asked]
        if len(set(names)) != len(names):
            raise invalid("lora", "Each LoRA may be named once per request.")
        offered = {lora.name: lora for lora in reversed(self.offered(spec))}  # the first of a name wins
        everywhere = {lora.name: lora for lora in self._files()}
        uses = []
        for name, scale in asked:
            lora = offered.get(name)
            if lora is None:
                other = everywhere.get(name)
                if other is not None:
                    meant = other.model or other.family
                    raise invalid(
                        "lora",
                        f"LoRA {name!r} is for {meant}; model {spec.id} is of the {spec.family} family.",
                        code="lora_mismatch",
                    )
                usable = ", ".join(sorted(offered)) or "none"
                raise invalid(
                    "lora",
                    f"Unknown LoRA {name!r} for model {spec.id} (usable: {usable}; see GET /v1/models/{spec.id}).",
                    code="lora_not_found",
                )
            uses.append(LoraUse(lora.name, lora.source, float(scale)))
        return tuple(uses)
