"""How compare_official.py's two workers time a run: the same code for both implementations.

Standard library only: official_worker.py runs in Meta's virtualenv, without samroto."""

import resource
import time


# SAM 2 attends to at most 7 memories (num_maskmem): from frame 8 on, every frame costs the same
FULL_MEMORY_FROM = 8


def median_frame_seconds(results):
    """Median seconds between consecutive yields of a propagation, the prompted frame 0 left
    out: over the frames whose memory bank is full when the clip reaches them (steady
    state), else over all frames."""
    times = []
    t0 = time.perf_counter()
    for frame_idx, *_ in results:
        t1 = time.perf_counter()
        if frame_idx > 0:
            times.append((frame_idx, t1 - t0))
        t0 = t1
    steady = [t for i, t in times if i >= FULL_MEMORY_FROM] or [t for _, t in times]
    return sorted(steady)[len(steady) // 2]


def cpu_capability():
    """The kernel path torch dispatches to on this CPU (e.g. AVX512, AVX2)."""
    import torch

    try:
        return torch.backends.cpu.get_cpu_capability()
    except AttributeError:  # torch older than 2.1
        return "unknown"


def timed_count(results):
    """(seconds, frames) to exhaust a propagation."""
    t0 = time.perf_counter()
    n = sum(1 for _ in results)
    return time.perf_counter() - t0, n


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
