"""Freed host memory goes back to the system between frames (core/host_memory.py)."""

import subprocess
import sys

import pytest

# Run in a fresh process: the heap of a long test session is in no predictable state.
SCENARIO = """
import numpy as np
from samroto.core.host_memory import release_free_memory

def resident_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20

big = np.ones(4 << 20, np.uint8)
del big  # freeing a large mmapped block raises glibc's mmap threshold, as a frame does
chunks, pins = [], []
for _ in range(300):  # 150 MiB from the heap, each chunk pinned by a small live block
    chunks.append(np.ones(512 << 10, np.uint8))
    pins.append(np.ones(8 << 10, np.uint8))
del chunks
retained = resident_mib()
released = release_free_memory()
print(released, retained - resident_mib())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim is Linux-only")
def test_free_heap_pages_are_returned():
    out = subprocess.run([sys.executable, "-c", SCENARIO], capture_output=True, text=True, check=True).stdout
    released, drop = out.split()
    assert released == "True"
    assert float(drop) > 100  # without the trim glibc keeps all 150 MiB resident


def test_a_session_releases_after_every_frame(monkeypatch):
    from test_video_session import DATA

    from samroto.core import sample
    from samroto.core.model.build import build_model
    from samroto.core.video import session as session_module

    calls = []
    monkeypatch.setattr(session_module, "release_free_memory", lambda: calls.append(1))
    model = build_model(DATA / "config.yaml", DATA / "checkpoint.pt", device="cpu")
    session = session_module.VideoSession(model, sample.make_frames(4, 96, 64))
    session.add_prompt(0, 1, points=[[50, 30]], labels=[1])
    assert len(calls) == 1
    assert len(list(session.propagate())) == 4
    assert len(calls) == 1 + 4  # once per prompt, once per propagated frame
