"""How compare_official.py's two workers time a run: the same code for both implementations.

Standard library only: official_worker.py runs in Meta's virtualenv, without samroto."""

import resource
import time


def median_frame_seconds(results):
    """Median seconds between consecutive yields of a propagation, the prompted frame 0 left out."""
    times = []
    t0 = time.perf_counter()
    for frame_idx, *_ in results:
        t1 = time.perf_counter()
        if frame_idx > 0:
            times.append(t1 - t0)
        t0 = t1
    return sorted(times)[len(times) // 2]


def timed_count(results):
    """(seconds, frames) to exhaust a propagation."""
    t0 = time.perf_counter()
    n = sum(1 for _ in results)
    return time.perf_counter() - t0, n


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
