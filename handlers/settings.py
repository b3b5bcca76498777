"""The one settings object. Every knob is an `IMAGEGEN_*` environment variable."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def user_cache_dir() -> Path:
    """Where imagegen keeps its files unless told otherwise (XDG_CACHE_HOME is honoured)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "imagegen"


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IMAGEGEN_", extra="ignore")

    # Comma-separated bearer keys. Empty: the API is open (for local use only).
    api_keys: str = ""
    # Public base URL for temp-image links (e.g. https://images.example.com). Empty: taken
    # from the request, honouring X-Forwarded-Proto / X-Forwarded-Host.
    public_url: str = ""
    image_ttl_seconds: int = Field(3600, ge=1)
    storage_dir: Path = Field(default_factory=lambda: user_cache_dir() / "images")
    cache_dir: Path = Field(default_factory=user_cache_dir)
    # Comma-separated catalog ids or local diffusers folders; the first is the default model.
    models: str = "tiny-sd,tiny-sdxl,tiny-flux"
    # Comma-separated name=model pairs, e.g. "dall-e-3=flux-schnell". OpenAI's model names
    # not listed here stand for the default model.
    model_aliases: str = ""
    device: str = Field("auto", pattern="^(auto|cpu|cuda|mps)(:[0-9]+)?$")
    preload: bool = False
    max_loaded_models: int = Field(3, ge=1)
    max_prompt_chars: int = Field(4000, ge=1)
    # Bad input: each uploaded file at most this many MB (413); each image at most this many
    # pixels, read from its header before decoding (400). Pillow's own bomb guard is the ceiling.
    max_upload_mb: int = Field(50, ge=1)
    max_image_pixels: int = Field(40_000_000, ge=1, le=89_478_485)
    # Comma-separated origins browsers may call from (e.g. https://app.example.com, or *). Empty: CORS off.
    cors_origins: str = ""
    # Load: requests waiting per model before new ones get 429 at once; how long one may wait
    # for its turn before a 503; how many images compatible requests may share in one
    # pipeline call, and how long a lone request waits for company.
    max_queue: int = Field(32, ge=1)
    queue_timeout_seconds: float = Field(120.0, gt=0)
    max_batch_images: int = Field(8, ge=1)
    batch_wait_ms: float = Field(10.0, ge=0)

    @field_validator("model_aliases")
    @classmethod
    def _aliases_are_pairs(cls, value: str) -> str:
        for item in _split(value):
            alias, equals, target = item.partition("=")
            if not (equals and alias.strip() and target.strip()):
                raise ValueError(f"{item!r} is not name=model (e.g. dall-e-3=flux-schnell)")
        return value

    @property
    def keys(self) -> list[str]:
        return _split(self.api_keys)

    @property
    def model_names(self) -> list[str]:
        return _split(self.models)

    @property
    def alias_map(self) -> dict[str, str]:
        pairs = (item.split("=", 1) for item in _split(self.model_aliases))
        return {alias.strip(): target.strip() for alias, target in pairs}

    @property
    def cors_origin_list(self) -> list[str]:
        return _split(self.cors_origins)
