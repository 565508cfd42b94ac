"""The parity figures docs/video.md quotes: the worst differences from Meta's recorded
video-predictor outputs, per recording and scenario, step-wise (teacher-forced) and end to
end, CPU float32, with the tolerance each figure exceeds, if any. It always prints every
figure; it exits 1 when one is over its tolerance.

    python bench/bench_parity.py [--threads N]
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 python bench/bench_parity.py  # AVX2
"""

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import parity_replay as parity  # noqa: E402  (the replay the tests run)

SHOWN = ("video_res_logits", "mask_flip_margin", "object_score_logits", "obj_ptr", "maskmem_beyond_bf16_step",
         "maskmem_changed")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: as torch starts)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"CPU kernels {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} thread(s), "
          f"torch {torch.__version__}")
    model = parity.load_model()
    failures = 0
    for mode in parity.MODES:
        tolerance = parity.TOLERANCES[mode]
        print(f"\n{mode} (tolerance: " + ", ".join(f"{k} {getattr(tolerance, k):.3g}" for k in SHOWN) + ")")
        print(f"{'recording':20s} sc calls " + " ".join(f"{k[:16]:>16s}" for k in SHOWN))
        for name in parity.RECORDINGS:
            recording = parity.Recording(name)
            for scenario in parity.SCENARIOS:
                try:
                    per_call = parity.replay(model, recording, scenario, stepwise=mode == "step-wise")
                except AssertionError as error:  # structure, not a tolerance: frames, shapes
                    print(f"{name:20s} {scenario}  replay failed: {error}")
                    failures += 1
                    continue
                worst = parity.Figures()
                for _, figures in per_call:
                    worst = worst.merge(figures)
                print(f"{name:20s} {scenario}  {len(per_call):5d} " + " ".join(f"{getattr(worst, k):16.3g}" for k in SHOWN))
                for label, figures in per_call:
                    for over in parity.exceeded(figures, tolerance):
                        print(f"    OVER TOLERANCE {label}: {over}")
                        failures += 1
    print(f"\n{failures} figure(s) over tolerance" if failures else "\nall figures within tolerance")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
