"""An in-process bridge on the micro fixture model (tests/data/sam2_parity), for the
interactive loop's tests (issue 18): a real BridgeServer and VideoSession in this process,
mattes SAM 2's own decision (no finishing), reached through its discovery file."""

import contextlib
import threading
import time
from pathlib import Path

DATA = Path(__file__).parent / "data" / "sam2_parity"
PLATE = Path(__file__).parent / "data" / "bridge"  # 112x80, 1001-1008: the micro model finds objects here
HERO = (66.9, 25.2)  # a click the micro model answers with three different masks (on 1001)
AMBIGUOUS = (56.0, 68.0)  # one whose best candidate (on 1001) is the first, not the second


def micro_model():
    import torch

    from samroto.core.model.build import build_model

    torch.manual_seed(0)
    return build_model(DATA / "config.yaml", DATA / "checkpoint.pt", device="cpu")


@contextlib.contextmanager
def in_process_bridge(config_dir, model=None):
    """Yields the config dir (str) of a running in-process bridge."""
    from samroto.bridge import discovery
    from samroto.bridge.server import BridgeServer, ServerConfig
    from samroto.core.video import VideoSession

    model = model or micro_model()
    server = BridgeServer(ServerConfig(config_dir=str(config_dir), unix=False, idle_timeout=0),
                          lambda frames, options: VideoSession(model, frames, precision="float32", **options),
                          {"name": "micro"})
    server.bind()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        while discovery.live(config_dir) is None:
            time.sleep(0.01)
        yield str(config_dir)
    finally:
        server.stop()
        thread.join(10)
