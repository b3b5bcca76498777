"""The built-in tiny random-weight models, for tests and offline development: each family's builder
(pipelines/families/<family>/tiny.py), seeded, saved as a diffusers folder."""

from __future__ import annotations

import pathlib

from pipelines.families import TINY_BUILDERS

TINY_FAMILIES = tuple(TINY_BUILDERS)


def build_tiny_model(family: str, dest: pathlib.Path) -> None:
    """Build a tiny random-weight pipeline of `family` and save it as a diffusers folder at dest."""
    if family not in TINY_BUILDERS:
        raise ValueError(f"unknown tiny family {family!r}; expected one of {TINY_FAMILIES}")
    import torch

    # fork_rng: seeding must not disturb the caller's global RNG stream.
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        pipe = TINY_BUILDERS[family]()
    dest = pathlib.Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(dest, safe_serialization=True)
