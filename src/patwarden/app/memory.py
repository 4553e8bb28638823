"""Process memory settings for the threaded runs (``rotate`` and ``serve`` passes).

glibc's allocator gives a thread that finds the heap busy an arena of its own, up to eight per
core, and each arena keeps its freed memory: a fleet run's 64 workers (their TLS buffers and
answers) grew the process by about 9 MB for nothing (peak RSS 118.6 → 109.3 MB at N=1000,
100 ms, docs/performance.md). The workers are Python threads and take turns on the GIL, so two
arenas serve them without contention. ``MALLOC_ARENA_MAX`` set in the environment wins; other
C libraries are left alone.
"""

from __future__ import annotations

import os
import sys

__all__ = ["MALLOC_ARENAS", "limit_malloc_arenas"]

MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # mallopt's parameter number (glibc malloc.h)


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Ask glibc for at most *arenas* malloc arenas from now on; return whether it took it.

    False when ``MALLOC_ARENA_MAX`` is set (the operator's choice stands), off Linux, or when the
    C library has no ``mallopt`` (musl).
    """
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return False
    import ctypes

    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(_M_ARENA_MAX, arenas))
