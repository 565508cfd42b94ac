"""One timed automatic-mask generation, in its own process (see bench_automask.py).

    python automask_worker.py samroto|meta JOB.json   -> prints one JSON line

``meta`` runs in a virtualenv holding Meta's ``sam2`` 1.1.0 (../shared/oracle/), without
samroto. Only the standard library, numpy, torch and the implementation timed are imported.
"""

import json
import os
import sys
import time
import types

from _timing import peak_rss_mb

HERE = os.path.dirname(os.path.abspath(__file__))


def meta_generator(job, kwargs):
    # CPU-only torch: torchvision's compiled ops (nms among them) do not load, and importing
    # its meta registrations fails. Stub those; if nms is missing, samroto's greedy NMS
    # (core/automask/boxes.py: torch only, the same decisions) stands in for it (NMS is far
    # below 1% of a frame's time).
    sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))
    import torch

    import sam2.automatic_mask_generator as amg
    from sam2.build_sam import build_sam2

    try:
        amg.batched_nms(torch.zeros(1, 4), torch.zeros(1), torch.zeros(1), 0.5)
        nms_note = "torchvision"
    except RuntimeError:
        import importlib.util

        spec = importlib.util.spec_from_file_location("samroto_boxes", os.path.join(HERE, "..", "core", "automask",
                                                                                     "boxes.py"))
        boxes = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(boxes)
        amg.batched_nms = lambda b, s, _categories, iou_threshold: boxes.nms(b, s, iou_threshold)
        nms_note = "samroto's (torchvision's ops do not load)"
    model = build_sam2(job["meta_config"], ckpt_path=job["checkpoint"], device="cpu")
    return amg.SAM2AutomaticMaskGenerator(model, **kwargs), nms_note, "float32"


def samroto_generator(job, kwargs):
    from samroto.core.automask import AutoMaskGenerator
    from samroto.core.model.build import build_model

    model = build_model(job["samroto_config"], job["checkpoint"], device="cpu")
    gen = AutoMaskGenerator(model, precision=job["precision"], **kwargs)
    return gen, None, str(gen.predictor.dtype).removeprefix("torch.")


def main():
    which, job_path = sys.argv[1], sys.argv[2]
    with open(job_path) as f:
        job = json.load(f)
    import numpy as np
    import torch

    torch.set_num_threads(job["threads"])
    kwargs = {"points_per_side": job["points_per_side"], "output_mode": "uncompressed_rle", **job["thresholds"]}
    build = {"meta": meta_generator, "samroto": samroto_generator}[which]
    gen, nms_note, precision = build(job, kwargs)
    image = np.load(job["image"])
    with torch.inference_mode():
        wall, cpu = time.perf_counter(), time.process_time()
        records = gen.generate(image)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    out = {"seconds": wall, "cpu_seconds": cpu, "masks": len(records), "peak_rss_mb": peak_rss_mb(),
           "precision": precision, "threads": torch.get_num_threads()}
    if nms_note:
        out["nms"] = nms_note
    print(json.dumps(out))


if __name__ == "__main__":
    main()
