"""Time and peak memory of ImagePredictor.set_image + 10 predict calls (random weights).

    .venv/bin/python bench/bench_image.py                      # tiny and large, CPU
    .venv/bin/python bench/bench_image.py sam2.1_hiera_tiny --device cuda --size 1080x1920

Each model runs in its own subprocess so that peak memory (max RSS; on CUDA also
torch.cuda.max_memory_allocated) belongs to that model alone.
"""

import argparse
import json
import resource
import subprocess
import sys
import time


def rss_mib():
    # ru_maxrss is KiB on Linux, bytes on macOS
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def run_one(name, device, height, width, repeats):
    import numpy as np
    import torch

    from samroto.core.image_predictor import ImagePredictor
    from samroto.core.model.build import build_model

    torch.manual_seed(0)
    result = {"model": name, "threads": torch.get_num_threads(), "image": f"{width}x{height}"}
    start = time.perf_counter()
    model = build_model(name, device=device)
    result["device"] = str(model.device)
    result["build_s"] = time.perf_counter() - start
    result["rss_after_build_mib"] = rss_mib()
    sync = torch.cuda.synchronize if model.device.type == "cuda" else (lambda: None)
    if model.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    predictor = ImagePredictor(model)
    set_times, predict_times = [], []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        predictor.set_image(image)
        sync()
        set_times.append(time.perf_counter() - start)
        prompts = [
            dict(point_coords=[[width * 0.3, height * 0.4]], point_labels=[1]),
            dict(point_coords=[[width * 0.3, height * 0.4], [width * 0.7, height * 0.2]], point_labels=[1, 0],
                 multimask_output=False),
            dict(box=[width * 0.1, height * 0.1, width * 0.6, height * 0.7], multimask_output=False),
        ]
        start = time.perf_counter()
        for i in range(10):
            predictor.predict(**prompts[i % len(prompts)])
        sync()
        predict_times.append(time.perf_counter() - start)
    result["set_image_s"] = min(set_times)
    result["predict_10_s"] = min(predict_times)
    result["predict_each_ms"] = 1000 * min(predict_times) / 10
    result["peak_rss_mib"] = rss_mib()
    if model.device.type == "cuda":
        result["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2 ** 20
    print(json.dumps(result))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", default=["sam2.1_hiera_tiny", "sam2.1_hiera_large"])
    parser.add_argument("--device", default="cpu", help="cpu, cuda, mps (default cpu)")
    parser.add_argument("--size", default="720x1280", help="input image HxW (default 720x1280)")
    parser.add_argument("--repeats", type=int, default=1, help="best of N rounds (default 1)")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    height, width = (int(v) for v in args.size.lower().split("x"))
    if args.one:
        run_one(args.models[0], args.device, height, width, args.repeats)
        return
    print(f"{'model':24} {'device':6} {'build s':>8} {'set_image s':>12} {'10 predict s':>13} "
          f"{'ms/predict':>10} {'peak RSS MiB':>13}")
    for name in args.models:
        cmd = [sys.executable, __file__, name, "--one", "--device", args.device, "--size", args.size,
               "--repeats", str(args.repeats)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            print(f"{name}: failed\n{proc.stderr[-2000:]}")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        extra = f"  (CUDA peak {r['peak_cuda_mib']:.0f} MiB)" if "peak_cuda_mib" in r else ""
        print(f"{r['model']:24} {r['device']:6} {r['build_s']:8.2f} {r['set_image_s']:12.2f} "
              f"{r['predict_10_s']:13.2f} {r['predict_each_ms']:10.1f} {r['peak_rss_mib']:13.0f}{extra}"
              f"   [{r['threads']} threads, image {r['image']}]")


if __name__ == "__main__":
    main()
