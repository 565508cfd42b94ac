"""The ``segment`` op: SAM 2's automatic masks on one frame of a session, for the artist to
pick objects from (docs/protocol.md, "Automatic masks"; docs/automask.md).

A mix-in of the Dispatcher (bridge/dispatch.py), which provides ``registry``, ``config``
and ``_submit``. The generator runs on the work queue one decoder batch per step, so a
``progress`` event follows every batch and ``cancel`` (or a disconnect) stops it within one.
The whole frame's image features come from the session's feature cache (as ``prompt_frame``'s
do), so the image encoder runs at most once per frame for clicks and automatic masks alike.
"""

from __future__ import annotations

import os
import time
from typing import Any

from . import paths
from .protocol import MAX_HEADER_BYTES, ProtocolError, _short
from .registry import SessionRegistry

# Meta's SAM2AutomaticMaskGenerator parameters a request may set, by kind (docs/automask.md)
INT_OPTIONS = {"points_per_side": (1, 256), "points_per_batch": (1, 4096), "crop_n_layers": (0, 4),
               "crop_n_points_downscale_factor": (1, 64), "min_mask_region_area": (0, 1 << 30)}
FLOAT_OPTIONS = {"pred_iou_thresh", "stability_score_thresh", "stability_score_offset", "mask_threshold",
                 "box_nms_thresh", "crop_nms_thresh", "crop_overlap_ratio"}
BOOL_OPTIONS = {"use_m2m", "multimask_output"}
TRANSPORTS = ("none", "file", "inline")
# a reply's JSON stays this far under the header cap (the listing's own fields)
REPLY_ROOM = 64 * 1024


class SegmentOps:
    """``segment``."""

    registry: Any
    config: Any

    def _op_segment(self, conn, rid, header, payload):
        session = self.registry.get(conn, header.get("session"))
        frame = header.get("frame")
        position = session.position(frame)
        options = generator_options(header.get("options"))
        spec = masks_spec(header.get("masks"), conn, self.config.write_roots)
        budget = header.get("memory_budget_mb")
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 1):
            raise ProtocolError("bad_request", f"memory_budget_mb must be a whole number of MiB, got {_short(budget)}")

        def report(step):
            conn.post({"id": rid, "event": "progress", "done": step.done, "total": step.total, "frame": frame,
                       "crop": step.crop, "crops": step.crops})

        def steps():
            from samroto.core.automask import AutoMaskGenerator, FrameTooLargeError

            SessionRegistry.check_open(session)
            image = session.frames.read_uint8(frame)
            engine = session.engine
            try:
                generator = AutoMaskGenerator(engine.model, output_mode="uncompressed_rle", precision=engine.dtype,
                                              memory_budget=budget << 20 if budget else None, **options)
            except ValueError as exc:
                raise ProtocolError("bad_request", f"options: {exc}") from None
            started = time.perf_counter()
            runs = engine.encoder_runs
            # the whole frame's features from the session's cache (a frame already clicked on
            # or tracked is not encoded again; one encoded here serves the clicks that follow)
            features = lambda: engine.image_features(position)  # noqa: E731
            try:
                records = yield from run_steps(generator.steps(image, features=features), report, session.touch)
            except FrameTooLargeError as exc:
                raise ProtocolError("engine_error", str(exc)) from None
            reply = {"frame": frame, "width": int(image.shape[1]), "height": int(image.shape[0]),
                     "count": len(records), "seconds": round(time.perf_counter() - started, 3),
                     "encoded": engine.encoder_runs > runs, "encoder_runs": engine.encoder_runs}
            reply.update(deliver(records, image, frame, spec, session, conn, self.model_name()))
            return reply

        self._submit(conn, rid, "segment", session.id, steps())
        return None

    def model_name(self) -> str:
        return str(getattr(self, "model_info", {}).get("name", ""))


def run_steps(work, report, touch):
    """Drive a generator's steps on the work queue: one decoder batch per queue step."""
    try:
        while True:
            try:
                step = next(work)
            except StopIteration as finished:
                return finished.value
            report(step)
            touch()
            yield
    finally:
        work.close()


def generator_options(raw: Any) -> dict:
    """The request's ``options``: Meta's parameter names, each of its kind and range."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ProtocolError("bad_request", "options must be an object of generator parameters, e.g. "
                            "{\"points_per_side\": 32, \"pred_iou_thresh\": 0.8}")
    known = sorted(set(INT_OPTIONS) | FLOAT_OPTIONS | BOOL_OPTIONS)
    out = {}
    for name, value in raw.items():
        if name in INT_OPTIONS:
            low, high = INT_OPTIONS[name]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ProtocolError("bad_request", f"options.{name} must be a whole number from {low} to {high}, "
                                    f"got {_short(value)}")
        elif name in FLOAT_OPTIONS:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or abs(value) > 1e6:
                raise ProtocolError("bad_request", f"options.{name} must be a number, got {_short(value)}")
            value = float(value)
        elif name in BOOL_OPTIONS:
            if not isinstance(value, bool):
                raise ProtocolError("bad_request", f"options.{name} must be true or false, got {_short(value)}")
        else:
            raise ProtocolError("bad_request", f"options: unknown parameter {_short(name)}; known: {', '.join(known)}")
        out[name] = value
    return out


def masks_spec(raw: Any, conn, write_roots) -> dict:
    """The request's ``masks``: how the masks come back (none, file, inline)."""
    spec = {"transport": "none"} if raw is None else raw
    if not isinstance(spec, dict) or spec.get("transport", "none") not in TRANSPORTS:
        raise ProtocolError("bad_request", "masks must be {\"transport\": \"file\", \"folder\": \"/abs/dir\"}, "
                            "{\"transport\": \"inline\"} (run-length encoded in the reply) or "
                            "{\"transport\": \"none\"}")
    spec = dict(spec)
    spec.setdefault("transport", "none")
    for name in ("overlay", "mask_files", "exr", "rle"):
        if name in spec and not isinstance(spec[name], bool):
            raise ProtocolError("bad_request", f"masks.{name} must be true or false, got {_short(spec[name])}")
    if spec["transport"] != "file":
        return spec
    folder = spec.get("folder")
    if not isinstance(folder, str) or not folder:
        raise ProtocolError("bad_request", "masks.folder must be the absolute path of the folder to write into")
    if getattr(conn, "path_map", None):  # shared storage named by the client's mount point
        folder = conn.server_path(folder)
    if not os.path.isabs(folder):
        raise ProtocolError("bad_request", f"masks.folder {_short(folder, 120)} must be an absolute path")
    stem = spec.get("stem", "masks")
    if not isinstance(stem, str) or not stem or os.sep in stem or "/" in stem or stem.startswith(".") \
            or any(c in stem for c in paths.TEMPLATE_CHARS):
        raise ProtocolError("bad_request", f"masks.stem must be a plain file name prefix, got {_short(stem)}")
    paths.check_length(os.path.join(folder, stem), "masks.folder", room=paths.PATTERN_ROOM)
    if write_roots is not None:
        paths.check_inside([folder], write_roots, "masks.folder", "bridge.write_roots")
    spec.update(folder=folder, stem=stem)
    return spec


def deliver(records, image, frame, spec, session, conn, model) -> dict:
    """The reply's ``masks`` (the listing) and, by transport, ``files`` or each mask's ``rle``."""
    from samroto.core.automask.export import listing, write_masks
    from samroto.core.io.errors import SamrotoIOError

    entries = listing(records)
    out: dict = {"masks": entries}
    if spec["transport"] == "inline" or spec.get("rle"):  # run lengths in the listing (a host hit-tests them)
        for entry, record in zip(entries, records):
            entry["rle"] = record["segmentation"]
        size = sum(len(e["rle"]["counts"]) for e in entries) * 8 + REPLY_ROOM
        if size > MAX_HEADER_BYTES:
            instead = "masks.rle false" if spec["transport"] == "file" else "masks.transport 'file'"
            raise ProtocolError("too_large", f"{len(entries)} masks run-length encoded come to about {size >> 20} MiB, "
                                f"over the {MAX_HEADER_BYTES >> 20} MiB a reply may hold: ask for {instead} "
                                "(or fewer masks: raise pred_iou_thresh)")
    if spec["transport"] == "file":
        try:
            written = write_masks(records, image, spec["folder"], frame, stem=spec["stem"],
                                  plate=getattr(session.frames, "plate", None), metadata={"samroto/model": model},
                                  describe={"source": session.frames.label, "session": session.id},
                                  with_overlay=spec.get("overlay", True), with_exr=spec.get("exr", True),
                                  mask_files=spec.get("mask_files", False))
        except SamrotoIOError as exc:
            raise ProtocolError("io_error", f"writing masks to {spec['folder']}: {exc}") from None
        files = {k: v for k, v in written.items() if k != "masks"}
        out["files"] = {k: conn.client_path(v) for k, v in files.items()}
        for entry, path in zip(entries, written.get("masks", [])):
            entry["file"] = conn.client_path(path)
    return out
