"""Image features per frame, least-recently-used first out, bounded in bytes.

Re-propagating after a correction revisits frames whose backbone features are already
known; keeping them (up to a byte budget) skips the image encoder, by far the most
expensive part of a frame.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable


def tensor_bytes(obj: Any) -> int:
    """Bytes held by the tensors in a (nested) list/tuple/dict."""
    if hasattr(obj, "element_size") and hasattr(obj, "nelement"):
        return obj.element_size() * obj.nelement()
    if isinstance(obj, dict):
        return sum(tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(tensor_bytes(v) for v in obj)
    return 0


class FeatureCache:
    """``get(key, compute)`` returns the cached value or computes and stores it.

    ``max_bytes=0`` disables caching except for the most recent frame (a frame is often
    asked for twice in a row: decoder, then memory encoder)."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max(0, int(max_bytes))
        self._items: OrderedDict[Any, tuple[Any, int]] = OrderedDict()
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key) -> bool:
        return key in self._items

    def get(self, key, compute: Callable[[], Any]):
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
            self.hits += 1
            return item[0]
        self.misses += 1
        value = compute()
        self.put(key, value)
        return value

    def put(self, key, value) -> None:
        size = tensor_bytes(value)
        if key in self._items:
            self.bytes -= self._items.pop(key)[1]
        self._items[key] = (value, size)
        self.bytes += size
        # always keep the newest item, even over budget
        while self.bytes > self.max_bytes and len(self._items) > 1:
            _, (_, old) = self._items.popitem(last=False)
            self.bytes -= old

    def clear(self) -> None:
        self._items.clear()
        self.bytes = 0
