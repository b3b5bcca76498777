"""`modal.Dict`, faked at its boundary as modal 1.6.4's `modal/dict.py` behaves: one store that
every front sees, values that cross by Modal's own serializer (a value read back is a copy, and
what cannot be pickled fails at the write), iteration in no particular order, `get`'s default,
`put(skip_if_exists=)` answering whether it wrote, `pop`'s KeyError. Thread-safe, as the server is."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from typing import Any

from modal._serialization import deserialize, serialize

_NO_DEFAULT = object()


class FakeDict:
    def __init__(self) -> None:
        self._items: dict[bytes, bytes] = {}
        self._lock = threading.Lock()

    def get(self, key: Any, default: Any = None) -> Any:
        with self._lock:
            value = self._items.get(serialize(key))
        return default if value is None else deserialize(value, None)

    def contains(self, key: Any) -> bool:
        with self._lock:
            return serialize(key) in self._items

    def __getitem__(self, key: Any) -> Any:
        value = self.get(key, _NO_DEFAULT)
        if value is _NO_DEFAULT:
            raise KeyError(f"{key} not in dict")
        return value

    def put(self, key: Any, value: Any, *, skip_if_exists: bool = False) -> bool:
        wire_key, wire_value = serialize(key), serialize(value)
        with self._lock:
            if skip_if_exists and wire_key in self._items:
                return False
            self._items[wire_key] = wire_value
        return True

    def __setitem__(self, key: Any, value: Any) -> None:
        self.put(key, value)

    def pop(self, key: Any, default: Any = _NO_DEFAULT) -> Any:
        with self._lock:
            value = self._items.pop(serialize(key), None)
        if value is None:
            if default is _NO_DEFAULT:
                raise KeyError(f"{key} not in dict")
            return default
        return deserialize(value, None)

    def len(self) -> int:
        with self._lock:
            return len(self._items)

    def items(self) -> Iterator[tuple[Any, Any]]:
        with self._lock:
            snapshot = list(self._items.items())
        random.shuffle(snapshot)  # "results are unordered"
        for key, value in snapshot:
            yield deserialize(key, None), deserialize(value, None)

    def keys(self) -> Iterator[Any]:
        for key, _ in self.items():
            yield key
