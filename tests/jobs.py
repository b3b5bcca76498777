"""A resolved Job for the tests that drive the model side or the engines without HTTP."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pipelines.contract.job import Job

SMALL_JOB = Job(
    task="generate",
    model="tiny-sd",
    prompt="x",
    n=1,
    width=64,
    height=64,
    output_width=64,
    output_height=64,
    steps=2,
    guidance=0.0,
    seeds=(1,),
)


def small_job(**changes: Any) -> Job:
    """A 64x64, 2-step generation of one tiny-sd image (seed 1), with `changes` made."""
    return replace(SMALL_JOB, **changes)
