"""Third-party log lines that mean nothing to a user of this server, dropped where they are logged."""

from __future__ import annotations

import logging

# transformers, on every load of a pipeline with an image processor (SD's CLIP, FLUX.2's Siglip):
# "`CLIPImageProcessor` requires torchvision (not installed); falling back to
# `CLIPImageProcessorPil`…". torchvision cannot be installed beside the CPU torch, and the PIL
# processors are what the pipelines use anyway: nothing to act on.
_DROPPED = {"transformers.utils.import_utils": ("requires torchvision (not installed); falling back",)}


class _Drop(logging.Filter):
    def __init__(self, phrases: tuple[str, ...]) -> None:
        super().__init__()
        self.phrases = phrases

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(phrase in message for phrase in self.phrases)


def quiet() -> None:
    """Drop those lines (once per process; the loggers need not exist yet)."""
    for name, phrases in _DROPPED.items():
        logger = logging.getLogger(name)
        if not any(isinstance(each, _Drop) for each in logger.filters):
            logger.addFilter(_Drop(phrases))
