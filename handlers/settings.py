"""The web side's settings: keys, URLs, temp images, request limits, CORS. `IMAGEGEN_*` variables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from pipelines.contract.config import ENV_PREFIX, comma_list, name_pairs, user_cache_dir

# NoDecode: the environment spells these `a,b` and `name=model,…`, not JSON.
CommaList = Annotated[list[str], NoDecode, BeforeValidator(comma_list)]
_ALIAS = "name=model (e.g. dall-e-3=flux-schnell)"
ModelAliases = Annotated[dict[str, str], NoDecode, BeforeValidator(lambda value: name_pairs(value, _ALIAS))]


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    # Comma-separated bearer keys. Empty: the API is open (for local use only).
    api_keys: CommaList = []
    # Public base URL for temp-image links (e.g. https://images.example.com). Empty: taken
    # from the request, honouring X-Forwarded-Proto / X-Forwarded-Host.
    public_url: str = ""
    image_ttl_seconds: int = Field(3600, ge=1)
    storage_dir: Path = Field(default_factory=lambda: user_cache_dir() / "images")
    # Content credentials (C2PA) on every final image: signed with the operator's certificate chain
    # and key (PEM, inline or a path), else with a local identity made on first start and kept in
    # the cache dir. Off: images carry no manifest.
    c2pa: bool = True
    c2pa_cert: str | None = None
    c2pa_key: str | None = None
    cache_dir: Path = Field(default_factory=user_cache_dir)
    # The most bytes of live temp images kept at once (2 GiB: about 12,000 PNGs at 256x256, 3,500
    # at 512x512). A new image that does not fit is a retryable 503, or with "b64" comes back
    # inline instead of behind a URL; images already handed out keep their URLs until they expire.
    storage_max_bytes: int = Field(2 * 2**30, ge=1)
    storage_full: Literal["error", "b64"] = "error"
    # Comma-separated name=model pairs, e.g. "dall-e-3=flux-schnell". OpenAI's model names
    # not listed here stand for the default model.
    model_aliases: ModelAliases = {}
    # A TOML file of the operator's own catalog entries ([models.<id>] tables in the catalog's
    # shape; see pipelines/contract/models_file.py); IMAGEGEN_MODELS names which to serve.
    models_file: Path | None = None
    max_prompt_chars: int = Field(4000, ge=1)
    # A folder of LoRA .safetensors files requests may name in `lora` (subfolders named after a
    # family or a model id scope them). Unset: LoRA is off, and a request that names one is a 400.
    lora_dir: Path | None = None
    # Without `response_format`: "auto" answers b64_json for GPT image names (gpt-image*,
    # chatgpt-image*), as OpenAI does, and a URL for every other name; or always one of them.
    response_format: Literal["auto", "url", "b64_json"] = "auto"
    # Bad input: each uploaded file at most this many MB, a whole request at most this many
    # (413, before the body is read where it declares its length); each image at most this
    # many pixels, read from its header before decoding (400). Pillow's bomb guard is the ceiling.
    max_upload_mb: int = Field(50, ge=1)
    # Room for 16 phone photos (an edit takes up to 16 images), or two files at the upload cap.
    max_request_mb: int = Field(128, ge=1)
    max_image_pixels: int = Field(40_000_000, ge=1, le=89_478_485)
    # Amplification: all of a request's uploads (up to 16 images and a mask) decode to at most
    # max_request_pixels together, read from their headers before any is decoded; and what a
    # request makes (width x height x n) is at most max_output_pixels: four of OpenAI's largest
    # size, 3840x2160 (an edit's output is the input's size unless it asks for another).
    max_request_pixels: int = Field(64_000_000, ge=1)
    max_output_pixels: int = Field(4 * 3840 * 2160, ge=1)
    # A body that is not multipart carries no images: JSON at most this many KB. The largest real
    # one (a 4,000-character prompt and negative prompt, every character \u-escaped, LoRAs) is
    # under 64 KB; past this the parse alone would hold the event loop.
    max_json_kb: int = Field(1024, ge=1)
    # Slow clients: a request's line and headers must arrive within header_timeout_seconds of
    # its first byte (or of the connection opening); its body, after body_grace_seconds, at
    # min_body_bytes_per_second on average; a kept-alive connection idle for idle_timeout_seconds
    # is closed. A late request is a 408 in OpenAI's error JSON. One client address holds at most
    # max_connections_per_client connections at once (more: a 429 and closed; behind a reverse
    # proxy every client shares its address: raise it to what the proxy opens).
    header_timeout_seconds: float = Field(10.0, gt=0)
    body_grace_seconds: float = Field(10.0, gt=0)
    min_body_bytes_per_second: int = Field(16 * 1024, ge=1)
    idle_timeout_seconds: int = Field(5, ge=1)
    max_connections_per_client: int = Field(256, ge=1)
    # On SIGTERM the server is gone within this many seconds: running jobs finish, waiting ones
    # that could not get a retryable 503 at once. Under the usual 30 s kill grace (Kubernetes, Docker).
    shutdown_timeout_seconds: float = Field(25.0, gt=0)
    # Logs: "plain" lines, or one JSON object a line. /metrics asks for a key like /v1 when keys
    # are set, unless it is public (a scraper on a private network).
    log_format: Literal["plain", "json"] = "plain"
    metrics_public: bool = False
    # Comma-separated origins browsers may call from (e.g. https://app.example.com, or *). Empty: CORS off.
    cors_origins: CommaList = []
    # Async jobs (`Prefer: respond-async`): unfinished jobs one key may have, and the server in all
    # (past either: 429 with Retry-After); how many of one model's jobs are in the engine's queue
    # at once (a synchronous request waits behind at most that many jobs).
    jobs_per_key: int = Field(16, ge=1)
    jobs_max_unfinished: int = Field(256, ge=1)
    jobs_in_engine: int = Field(2, ge=1)
    # A front holds each unfinished job by a lease it renews (a third of this, in seconds); a job
    # whose lease lapses (its front died) is taken up by another front (handlers/jobs/leases.py).
    jobs_lease_seconds: float = Field(30.0, gt=0)
    # Webhooks: the Standard Webhooks secret (`whsec_` + base64) that signs them; unset, webhooks
    # are off. Hosts (names, addresses or networks such as 10.0.0.0/8) webhooks may reach besides
    # public addresses; a nameserver ("ip" or "ip:port") to resolve their names with instead of the
    # system's; delivery attempts, the first wait between them (doubling), each attempt's timeout.
    webhook_secret: str = ""
    webhook_hosts: CommaList = []
    webhook_nameserver: str = ""
    webhook_attempts: int = Field(5, ge=1)
    webhook_backoff_seconds: float = Field(1.0, ge=0)
    webhook_timeout_seconds: float = Field(10.0, gt=0)
