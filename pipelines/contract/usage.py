"""What a Job cost in tokens, as OpenAI's image `usage` counts it (counted on the model side, where
the tokenizer is, and carried back with the images)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Usage:
    """Token counts of one request: the prompt's text tokens, the input images' latent patches and
    the generated images' latent patches. See the README's "Usage" for how each is counted."""

    text_tokens: int = 0
    image_tokens: int = 0
    output_tokens: int = 0

    @property
    def input_tokens(self) -> int:
        return self.text_tokens + self.image_tokens

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def openai(self) -> dict[str, Any]:
        """OpenAI's `usage` object, always complete (clients read any of its fields)."""
        return {
            "input_tokens": self.input_tokens,
            "input_tokens_details": {"text_tokens": self.text_tokens, "image_tokens": self.image_tokens},
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
        }


def latent_patches(width: int, height: int, patch_pixels: int) -> int:
    """How many latent patches of `patch_pixels` x `patch_pixels` image pixels an image holds."""
    return (width // patch_pixels) * (height // patch_pixels)
