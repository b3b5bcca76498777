"""The matting models: what cuts a generated image's subject out for `background: "transparent"`.

Not image models of the catalog (no request names one): the server runs one of these after the
generator, where the generator runs, on the images of every transparent job. Data, like the
catalog; the model side (pipelines/matting/) loads and runs them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MattingSpec:
    """One matting model: where its weights are, and the square side its input is resized to."""

    id: str
    source: str  # "hub:org/repo" (pinned by `revision`), "tiny:matte" (built locally) or "dir:/a/folder"
    resolution: int
    description: str
    revision: str | None = None


MATTING_MODELS: dict[str, MattingSpec] = {
    spec.id: spec
    for spec in (
        # BiRefNet (MIT, Swin-L, 444 MB of fp16 weights): state of the art on dichotomous
        # segmentation (DIS5K), sharp edges on hair and fur. Its code ships in the repo (transformers
        # loads it with trust_remote_code, fixed at the pinned revision) and needs torchvision.
        MattingSpec(
            id="birefnet",
            source="hub:ZhengPeng7/BiRefNet",
            revision="e2bf8e4460fc8fa32bba5ea4d94b3233d367b0e4",
            resolution=1024,
            description="BiRefNet (ZhengPeng7/BiRefNet), MIT: the subject's matte at 1024x1024",
        ),
        # The same code path on a built-in random-weight net: every transparent request works
        # offline, in milliseconds. Its matte is meaningless but never empty: see tiny_matte.py.
        MattingSpec(
            id="tiny-matte",
            source="tiny:matte",
            resolution=64,
            description="Tiny random-weight matte (a centred ellipse): transparent backgrounds offline",
        ),
    )
}
DEFAULT_MATTING = "tiny-matte"
