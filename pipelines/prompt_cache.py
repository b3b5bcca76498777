"""The prompt-embedding cache: a repeated prompt skips its text encoders (one of the optimisations
in pipelines/optimize.py; on by default on CUDA)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any


class PromptCache:
    """The last `size` prompts' embeddings of one pipeline, least recently used evicted.

    Keyed on everything `encode_prompt` is called with (prompt, negative prompt, images per
    prompt, guidance on/off, sequence length, LoRA scale...); a call with tensors in it (ready
    embeddings) is not cached. The text encoder's weights are part of the pipeline, so the key is
    per model; whoever changes them (a LoRA on the text encoder) calls `clear()`.
    """

    def __init__(self, encode: Callable[..., Any], size: int) -> None:
        self._encode = encode
        self.size = size
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        key = _key((args, tuple(sorted(kwargs.items()))))
        if key is None:
            return self._encode(*args, **kwargs)
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                self.hits += 1
                return _copy(self._entries[key])
        value = self._encode(*args, **kwargs)
        with self._lock:
            self.misses += 1
            self._entries[key] = value
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return _copy(value)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def prompt_cache(pipe: Any) -> PromptCache | None:
    """The pipeline's prompt-embedding cache, if it has one."""
    encode = pipe.__dict__.get("encode_prompt")
    return encode if isinstance(encode, PromptCache) else None


def add_prompt_cache(pipe: Any, size: int) -> None:
    """Put a cache of `size` prompts in front of the pipeline's `encode_prompt` (once)."""
    if hasattr(pipe, "encode_prompt") and prompt_cache(pipe) is None:
        pipe.encode_prompt = PromptCache(pipe.encode_prompt, size)


def _key(value: Any) -> Any:
    """A hashable stand-in for encode_prompt's arguments, or None where one holds a tensor."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        parts = [_key(each) for each in value]
        return (
            None
            if any(part is None and each is not None for part, each in zip(parts, value, strict=True))
            else tuple(parts)
        )
    kind = type(value).__name__
    if kind in ("device", "dtype"):
        return f"{kind}:{value}"
    return None


def _copy(value: Any) -> Any:
    """The cached embeddings, cloned: a pipeline may not write into what the next request reuses."""
    if hasattr(value, "clone"):
        return value.clone()
    if isinstance(value, (list, tuple)):
        return type(value)(_copy(each) for each in value)
    return value
