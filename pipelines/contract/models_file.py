"""An operator's own catalog entries, from a TOML file (`IMAGEGEN_MODELS_FILE`), checked at start.

Each `[models.<id>]` table is a catalog entry in the catalog's own shape (the fields of
`ModelSpec`); `like = "<catalog id>"` starts from an existing entry so only what differs is
written:

    [models.my-sdxl]
    like = "sdxl-turbo"
    source = "hub:me/my-sdxl-finetune"
    revision = "0123456789abcdef0123456789abcdef01234567"
    description = "Our house style"

    [models.house]
    source = "/models/house-diffusers-folder"
    family = "sd"
    description = "A local folder"
    steps = { low = 10, standard = 20, hd = 30 }
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from pipelines.contract.catalog import CATALOG, ModelSpec

_CHECK = TypeAdapter(ModelSpec)  # unknown fields are refused before this, by name
_FIELDS = {field.name for field in dataclasses.fields(ModelSpec)}


class ModelsFileError(ValueError):
    """A models file that cannot be used; the message names the file, the entry and the field."""


def _entry(path: str | Path, model_id: str, table: Any) -> ModelSpec:
    where = f"{path}: [models.{model_id}]"
    if not isinstance(table, dict):
        raise ModelsFileError(f"{where} must be a table of catalog fields")
    table = dict(table)
    like = table.pop("like", None)
    unknown = sorted(set(table) - _FIELDS - {"id"})
    if unknown:
        raise ModelsFileError(f"{where}: unknown field {unknown[0]!r} (fields: like, {', '.join(sorted(_FIELDS))})")
    base: dict[str, Any] = {}
    if like is not None:
        if like not in CATALOG:
            raise ModelsFileError(f"{where}: field 'like': {like!r} is not a catalog id ({', '.join(CATALOG)})")
        # What belongs to the other entry's repo (its pinned commit, its files' variant, its LoRAs)
        # is not inherited.
        base = {name: getattr(CATALOG[like], name) for name in _FIELDS - {"revision", "variant", "loras"}}
        base["styles"] = {name: dataclasses.asdict(style) for name, style in CATALOG[like].styles.items()}
    fields = {**base, **table, "id": model_id}
    try:
        spec = _CHECK.validate_python(fields)
    except ValidationError as exc:
        problem = exc.errors()[0]
        field = ".".join(str(part) for part in problem["loc"]) or "?"
        raise ModelsFileError(f"{where}: field {field!r}: {problem['msg']}") from None
    if not (spec.source.startswith(("hub:", "tiny:")) or Path(spec.source).expanduser().exists()):
        raise ModelsFileError(
            f"{where}: field 'source': {spec.source!r} is neither hub:<org>/<repo>, tiny:<family>, "
            "nor an existing folder or file"
        )
    if spec.source.startswith("hub:") and not spec.revision:
        raise ModelsFileError(
            f"{where}: field 'revision': a hub model needs a pinned revision (a commit hash), so "
            "that a restart never serves other weights"
        )
    return spec


def read_models_text(text: str, origin: str | Path) -> tuple[ModelSpec, ...]:
    """Entries from a models file's text (`origin` names it in errors). Raises ModelsFileError."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ModelsFileError(f"{origin}: not valid TOML ({exc})") from None
    tables = document.get("models")
    if set(document) - {"models"} or not isinstance(tables, dict) or not tables:
        raise ModelsFileError(f"{origin}: expected one or more [models.<id>] tables and nothing else")
    return tuple(_entry(origin, model_id, table) for model_id, table in tables.items())


def read_models_file(path: Path) -> tuple[ModelSpec, ...]:
    """The file's entries, each checked. Raises ModelsFileError naming what is wrong."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ModelsFileError(f"{path}: cannot read it ({exc.strerror})") from None
    return read_models_text(text, path)
