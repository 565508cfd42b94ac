"""Runs inside the throwaway virtualenv that holds Meta's ``sam2`` 1.1.0 (see compare_official.py).

Usage: python official_worker.py prepare|track JOB.json  -> prints one JSON line.
Only the standard library, torch and sam2 are imported here; samroto is not.
"""

import json
import sys
import types

from _timing import cpu_capability, median_frame_seconds, peak_rss_mb, timed_count


def import_sam2():
    # CPU-only torch: torchvision's compiled ops do not load and its meta registrations
    # module fails at import. sam2 only uses pure-Python transforms, so stub it out.
    sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))
    import sam2.build_sam as build_sam

    return build_sam


def prepare(job):
    """Build the real config with random weights (seeded) and save them as an official checkpoint."""
    import torch

    torch.manual_seed(job["seed"])
    build_sam = import_sam2()
    model = build_sam.build_sam2(job["official_config"], ckpt_path=None, device="cpu", mode="eval")
    torch.save({"model": model.state_dict()}, job["checkpoint"])
    return {"params": sum(p.numel() for p in model.parameters())}


def track(job):
    import torch

    torch.set_num_threads(job["threads"])
    build_sam = import_sam2()
    predictor = build_sam.build_sam2_video_predictor(job["official_config"], ckpt_path=job["checkpoint"], device="cpu")
    out = {}
    with torch.inference_mode():
        state = predictor.init_state(job["frames_dir"])
        for obj in job["objects"]:
            predictor.add_new_points_or_box(state, frame_idx=0, obj_id=obj["id"], points=[obj["point"]], labels=[1])
        out["per_frame_s"] = median_frame_seconds(predictor.propagate_in_video(state))
        fix = job["correction"]
        if fix:
            predictor.add_new_points_or_box(state, frame_idx=fix["frame"], obj_id=job["objects"][0]["id"],
                                            points=[fix["point"]], labels=[0], clear_old_points=False)
            out["repropagate_s"], out["repropagate_frames"] = timed_count(predictor.propagate_in_video(
                state, start_frame_idx=fix["frame"], max_frame_num_to_track=fix["frames"]))
    out["peak_rss_mb"] = peak_rss_mb()
    out["kernels"] = cpu_capability()
    return out


if __name__ == "__main__":
    action, job_path = sys.argv[1], sys.argv[2]
    with open(job_path) as f:
        job = json.load(f)
    print(json.dumps({"prepare": prepare, "track": track}[action](job)))
