"""The parity figures docs/video.md quotes: the largest difference from Meta's recorded
video-predictor outputs (video-resolution logits, object pointers) over scenarios A, B, C,
CPU float32, with every check of tests/test_video_parity.py applied on the way.

    python bench/bench_parity.py
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import test_video_parity as parity  # noqa: E402  (the replay the tests run)


def main():
    recorded = np.load(parity.DATA / "video_predictor.npz")
    ops = json.loads((parity.DATA / "video_predictor_ops.json").read_text())
    torch.manual_seed(0)
    model = parity.build_model(parity.DATA / "config_video_predictor.yaml", parity.DATA / "checkpoint.pt",
                               device="cpu", apply_postprocessing=False)
    overall = {}
    for scenario in ("A", "B", "C"):
        calls = parity.replay(scenario, ops, recorded, model)
        worst = {k: max(c[k] for c in calls) for k in calls[0]}
        overall = {k: max(overall.get(k, 0.0), v) for k, v in worst.items()}
        print(f"scenario {scenario}: " + ", ".join(f"{k} {v:.2g}" for k, v in worst.items()))
    print("all: " + ", ".join(f"{k} {v:.2g}" for k, v in overall.items())
          + f" (tolerance {parity.LOGIT_TOL:g})")


if __name__ == "__main__":
    main()
