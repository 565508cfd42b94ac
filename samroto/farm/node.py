"""How many `samroto track` processes a CPU render node runs at once, and with how many
threads each (docs/farm.md, "CPU nodes"). Measured (bench/bench_farm.py): a shot's frames
are sequential and one process's speed grows slowly with threads past a few, so a node does
the most frames per minute as several shots side by side with few threads each, as many as
its memory holds."""

from __future__ import annotations

import math

RESERVE_GB = 4.0  # the OS, the farm's own agent, file caches


def node_plan(cores: int, memory_gb: float, process_gb: float, min_threads: int = 1) -> tuple[int, int]:
    """(processes, threads per process) for a node with ``cores`` and ``memory_gb``, each
    process peaking at ``process_gb`` (bench/bench_farm.py prints it per model and plate)."""
    if cores < 1 or memory_gb <= 0 or process_gb <= 0:
        raise ValueError("cores, memory_gb and process_gb must be positive")
    fit = max(1, int((memory_gb - RESERVE_GB) // process_gb))  # processes the memory holds
    processes = max(1, min(cores // max(1, min_threads), fit))
    return processes, max(1, math.floor(cores / processes))
