"""What every settings object shares: where imagegen keeps files, and how list and pair values
are spelled in the environment (`a,b` and `name=value,…`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

ENV_PREFIX = "IMAGEGEN_"


def user_cache_dir() -> Path:
    """Where imagegen keeps its files unless told otherwise (XDG_CACHE_HOME is honoured)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "imagegen"


def comma_list(value: Any) -> Any:
    """`"a, b,"` → `["a", "b"]`; a list passes through (a validator for list settings)."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def name_pairs(value: Any, spelling: str = "name=value") -> Any:
    """`"a=x, b=y"` → `{"a": "x", "b": "y"}`; a dict passes through (a validator for pair settings).

    Raises ValueError naming the item that is not spelled so.
    """
    if not isinstance(value, str):
        return value
    pairs = {}
    for item in comma_list(value):
        name, equals, target = item.partition("=")
        if not (equals and name.strip() and target.strip()):
            raise ValueError(f"{item!r} is not {spelling}")
        pairs[name.strip()] = target.strip()
    return pairs
