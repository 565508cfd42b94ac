"""Matte events: one ``matte`` event per frame of a request, through the transport the client
chose (files it names, shared memory, inline bytes, or none), finished as it asked."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from . import protocol
from .protocol import ProtocolError

if TYPE_CHECKING:  # numpy, core and torch load on first use, not with the bridge
    import numpy as np

    from samroto.core.finishing.pipeline import Finisher
    from samroto.core.io import MatteWriter
    from samroto.core.shot import FrameMattes

    from .connection import Connection
    from .sessions import BridgeSession

# finisher_factory(**overrides) -> a core.finishing Finisher with the bridge's finish.* settings
FinisherFactory = Callable[..., "Finisher"]

TRANSPORTS = ("none", "file", "shm", "inline")


class MatteEmitter:
    """Sends the mattes of one request (``add_prompts``: each prompted frame; ``propagate``:
    each tracked frame) as ``matte`` events. ``spec``: the request's ``mattes`` field."""

    def __init__(self, conn: Connection, rid: Any, session: BridgeSession, spec: Any,
                 finisher_factory: FinisherFactory | None, write_roots: list[str] | None = None, model: str = ""):
        if spec is not None and not isinstance(spec, dict):
            raise ProtocolError("bad_request", "mattes must be an object with a 'transport' (file, shm, inline)")
        self.conn, self.rid, self.session = conn, rid, session
        self.spec = spec or {"transport": "none"}
        self.write_roots = write_roots
        self.model = model  # named in the matte files' provenance
        self.transport = self.spec.get("transport", "none")
        if self.transport not in TRANSPORTS:
            raise ProtocolError("bad_request", f"mattes.transport must be file, shm, inline or none, "
                                f"not {protocol._short(self.transport)}")
        if self.transport == "file":
            from .sessions import check_matte_spec
            check_matte_spec(self.spec, write_roots)
        if self.transport == "shm" and not protocol.shm_supported():
            raise ProtocolError("shm_error", "this bridge has no shared memory support")
        self.dtype = self.spec.get("dtype", "float32")
        self.values = self.spec.get("values", "alpha")
        if self.values not in ("alpha", "logits") or (self.values == "logits" and (
                self.transport not in ("shm", "inline") or self.dtype != "float32")):
            raise ProtocolError("bad_request", "mattes.values must be 'alpha', or 'logits' with transport shm or "
                                "inline and dtype float32")
        if self.transport in ("shm", "inline"):
            import numpy as np

            from .sessions import encode_alpha
            encode_alpha(np.zeros((1, 1), np.float32), self.dtype)  # validates the dtype early
        self._writer: MatteWriter | None = None
        self._writer_names: list[str] | None = None
        self.finisher = self._finisher(self.spec.get("finish", {}), finisher_factory)

    def _finisher(self, finish: Any, factory: FinisherFactory | None) -> Finisher | None:
        """The finishing stage for these mattes: the bridge's ``finish.*`` settings, overridden
        per request (``"finish": {"grow": 2}``), or off (``"finish": false``)."""
        if finish is False or self.values == "logits" or factory is None:
            return None
        if not isinstance(finish, dict):
            raise ProtocolError("bad_request", "mattes.finish must be false or an object of finish settings "
                                "(e.g. {\"grow\": 2, \"feather\": 1.5})")
        check_finish(finish)
        try:
            return factory(**finish)
        except (TypeError, ValueError) as exc:
            raise ProtocolError("bad_request", f"mattes.finish: {exc}") from None

    @property
    def wanted(self) -> bool:
        return self.transport != "none" and not self.conn.closed.is_set()

    def runner_options(self) -> dict:
        """What the shot runner computes for each tracked frame (no finishing nobody receives)."""
        return {"finisher": self.finisher if self.transport != "none" else None, "values": self.values}

    # -- the two kinds of frames ----------------------------------------------------------------
    def prompted(self, frame: int, obj_ids: list[int], logits: Any) -> None:
        """A prompted frame: the engine's low-res ``logits`` [n_obj, h, w], finished here."""
        if not self.wanted:
            return
        from samroto.core.shot import finish_frame

        frames = self.session.frames
        if self.values == "logits":
            values = self.session.engine.logits(frames.index_of(frame), low_res=False)
        else:
            values = finish_frame(self.finisher, frames, frame, obj_ids, logits)
        self.send(frame, obj_ids, values, objects=self.scored(frame, obj_ids))

    def tracked(self, result: FrameMattes) -> None:
        """A tracked frame, already finished by the shot runner (core.shot.track)."""
        if self.wanted:
            self.send(result.frame, result.obj_ids, result.values, objects=self.scored(result.frame, result.obj_ids))

    def scored(self, frame: int, obj_ids: list[int]) -> list[dict]:
        """The frame's objects with SAM 2's object ``score`` (logit; <= 0: lost or occluded there)."""
        objects = self.session.objects(obj_ids)
        position = self.session.frames.index_of(frame)
        for obj in objects:
            score = self.session.engine.object_score(position, obj["id"])
            if score is not None:
                obj["score"] = round(score, 4)
        return objects

    def candidates(self, frame: int, obj_id: int, logits: Any, ious: Any) -> None:
        """SAM 2's candidates for one object's single click: low-res ``logits`` [3, h, w] and
        their predicted IoU, as one ``candidates`` event whose channels are named
        ``<name>_candidate1..3`` (SAM 2's own decision, logits > 0, unfinished: they are for
        picking; or the logits with ``values: logits``)."""
        if not self.wanted:
            return
        import numpy as np

        from samroto.core.shot import finish_frame

        frames = self.session.frames
        rows = list(range(len(ious)))
        if self.values == "logits":
            import torch
            import torch.nn.functional as F

            values = F.interpolate(torch.as_tensor(np.asarray(logits, np.float32))[:, None],
                                   size=(frames.height, frames.width), mode="bilinear", align_corners=False)[:, 0]
        else:
            values = finish_frame(None, frames, frame, rows, logits)
        name = self.session.names.get(int(obj_id), f"obj{int(obj_id)}")
        objects = [{"id": int(obj_id), "name": f"{name}_candidate{i + 1}", "candidate": i, "iou": float(q)}
                   for i, q in enumerate(ious)]
        self.send(frame, [obj_id] * len(rows), values, objects=objects, kind="candidates")

    # -- transports -------------------------------------------------------------------------------
    def send(self, frame: int, obj_ids: list[int], values: Any, objects: list | None = None,
             kind: str = "matte") -> None:
        """One frame's ``values`` [n_obj, H, W] (alpha or logits) as a ``matte`` event (or
        ``kind``; ``objects``: the channels' {id, name, ...}, default the session's objects)."""
        from .sessions import encode_alpha, matte_writer

        if hasattr(values, "detach"):  # a torch tensor
            values = values.detach().float().cpu().numpy()
        objects = self.session.objects(obj_ids) if objects is None else objects
        event = {"id": self.rid, "event": kind, "frame": frame, "objects": objects}
        if self.transport == "file":
            from samroto.core.io import safe_name

            names = [o["name"] for o in objects]
            if self._writer is None or self._writer_names != names:
                self.close()
                from samroto.core.shot.provenance import matte_metadata

                # the plate's format and the same provenance `samroto track` writes
                frames = self.session.frames
                self._writer = matte_writer(self.spec, names, self.write_roots, plate=frames.plate,
                                            metadata=matte_metadata(frames, self.model, *self.session.prompt_sets))
                self._writer_names = names
            try:
                paths = self._writer.write(frame, {safe_name(n): a for n, a in zip(names, values)})
            except Exception as exc:  # noqa: BLE001 - disk full, permissions: the job fails cleanly
                raise ProtocolError("io_error", f"writing mattes for frame {frame}: {exc}") from None
            event["paths"] = [str(p) for p in paths]
            self.conn.post(event)
            return
        data: np.ndarray = encode_alpha(values, self.dtype)
        event.update(shape=list(data.shape), dtype=self.dtype)
        if self.transport == "shm":
            event["shm"] = self.conn.segments.create(data)
            self.conn.post(event)
        else:
            self.conn.post(event, memoryview(data).cast("B"))

    def close(self) -> None:
        if self._writer is not None:
            try:
                self._writer.close()
            finally:
                self._writer = None


def check_finish(finish: dict) -> None:
    """Per-request finish settings against their types in core's settings table, at request
    time (a wrong one is the request's bad_request, not a failure mid-propagation)."""
    import math

    from samroto.core.settings import KEYS

    for name, value in finish.items():
        key = KEYS.get(f"finish.{name}")
        if key is None:
            known = sorted(k[len("finish."):] for k in KEYS if k.startswith("finish."))
            raise ProtocolError("bad_request", f"mattes.finish: unknown setting {protocol._short(name)}; known: "
                                f"{', '.join(known)}")
        if key.type is bool:
            ok = isinstance(value, bool)
        elif key.type in (int, float):
            ok = (not isinstance(value, bool) and isinstance(value, (int, float)) and abs(value) <= 1e9
                  and (isinstance(value, int) or math.isfinite(value)) and (key.type is float or isinstance(value, int)))
        else:
            ok = isinstance(value, key.type)
        if not ok:
            raise ProtocolError("bad_request", f"mattes.finish.{name} must be {_type_name(key.type)}, got "
                                f"{protocol._short(value)}. {key.help}")


def _type_name(t: Any) -> str:
    return {bool: "true or false", float: "a finite number (at most 1e9)", int: "a whole number"}.get(t, getattr(t, "__name__", str(t)))
