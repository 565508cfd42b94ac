"""samroto's side of compare_official.py: the same job as official_worker.py, timed the same way.

Frames are read lazily from the JPEG folder, as ``samroto track`` reads a shot.
"""

import json
import sys
from pathlib import Path

import torch
from _timing import cpu_capability, median_frame_seconds, peak_rss_mb, timed_count

from samroto.core import VideoSession, build_model, open_frames


def track(job, precision):
    torch.set_num_threads(job["threads"])
    model = build_model(job["samroto_config"], checkpoint=job["checkpoint"], device="cpu")
    frames = open_frames(str(Path(job["frames_dir"]) / "%05d.jpg"))
    out = {}
    with torch.inference_mode():
        session = VideoSession(model, frames, precision=precision)
        out["precision"] = str(session.dtype).removeprefix("torch.")
        for obj in job["objects"]:
            session.add_prompt(0, obj["id"], points=[obj["point"]], labels=[1])
        out["per_frame_s"] = median_frame_seconds(session.propagate())
        fix = job["correction"]
        if fix:
            session.add_prompt(fix["frame"], job["objects"][0]["id"], points=[fix["point"]], labels=[0], clear=False)
            out["repropagate_s"], out["repropagate_frames"] = timed_count(
                session.propagate(start=fix["frame"], max_frames=fix["frames"]))
    out["peak_rss_mb"] = peak_rss_mb()
    out["kernels"] = cpu_capability()
    return out


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        print(json.dumps(track(json.load(f), sys.argv[2] if len(sys.argv) > 2 else "auto")))
