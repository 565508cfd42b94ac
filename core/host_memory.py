"""Giving freed host memory back to the system between frames.

A frame at 1024 allocates and frees about a gigabyte of large tensors. glibc keeps much of
that in its heap after the free (its mmap threshold grows with every large free), and the
next frame's allocations do not fit the holes exactly, so the resident set, and with it
the peak, creeps up by hundreds of MiB. ``malloc_trim`` hands the free pages back; once a
frame it costs about 1% of the frame's time and lowers the peak by ~200 MiB (docs/speed.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim  # glibc only; musl and others have no such symbol
    except (OSError, AttributeError):
        return None


def release_free_memory() -> bool:
    """Return the C heap's free pages to the system. True where that was possible."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
