"""A tiny random-weight matting net with BiRefNet's interface (`model(pixels)[-1]` are the matte's
logits), saved beside its weights and loaded back through the same `trust_remote_code` path as
BiRefNet's own code. Self-contained (torch and transformers only): transformers copies this file.

Random weights alone would give a meaningless, mostly half-transparent matte; a fixed prior (a
centred ellipse, far stronger than the random part) makes every matte hold a fully opaque subject
and a fully transparent background, so what a client sees of a transparent request is testable.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel


class TinyMatteConfig(PretrainedConfig):
    model_type = "tiny_matte"

    def __init__(self, channels: int = 8, prior: float = 12.0, **kwargs) -> None:
        self.channels = channels
        self.prior = prior
        super().__init__(**kwargs)


class TinyMatte(PreTrainedModel):
    config_class = TinyMatteConfig
    main_input_name = "pixel_values"

    def __init__(self, config: TinyMatteConfig) -> None:
        super().__init__(config)
        self.net = nn.Sequential(
            nn.Conv2d(3, config.channels, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(config.channels, 1, 3, padding=1),
        )
        self.post_init()

    def forward(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        random_part = torch.tanh(self.net(pixel_values))  # within (-1, 1)
        height, width = pixel_values.shape[-2:]
        rows = torch.linspace(-1, 1, height, device=pixel_values.device, dtype=pixel_values.dtype)
        columns = torch.linspace(-1, 1, width, device=pixel_values.device, dtype=pixel_values.dtype)
        inside = 0.5 - (rows[:, None] ** 2 + columns[None, :] ** 2)  # > 0 within the ellipse
        return [self.config.prior * torch.sign(inside) + random_part]
