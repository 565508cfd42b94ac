"""The interactive loop's ops (protocol 1.2, docs/protocol.md "Interactive loop"): a prompt
on a frame answered with that frame's matte at once from its cached image features, SAM
2's three candidates for a single click, a chosen candidate made that frame's mask prompt,
and a session's counters (image-encoder runs, feature cache).

A mix-in of the Dispatcher (bridge/dispatch.py), which provides ``registry``, ``config``,
``_submit`` and ``_emitter``. The engine work runs on the work queue, in request order with
the session's other requests, as every op's does.
"""

from __future__ import annotations

from typing import Any

from samroto.core.prompts import PromptError

from .protocol import ProtocolError, _short
from .registry import SessionRegistry

MASK_EXTENSIONS = (".png", ".tif", ".tiff", ".exr")


class InteractiveOps:
    """``prompt_frame``, ``choose_candidate``, ``session_info``."""

    registry: Any
    config: Any

    def _op_prompt_frame(self, conn, rid, header, payload):
        session = self.registry.get(conn, header.get("session"))
        prompt_set = one_prompt(session, header, self.config.read_roots)
        emit = self._emitter(conn, rid, session, header)
        cands = self._emitter(conn, rid, session, {"mattes": header.get("candidates")})
        obj = prompt_set.objects[0]

        def steps():
            try:
                SessionRegistry.check_open(session)
                got = yield from session.prompt_frame(prompt_set, emit.prompted)
                reply = {"frame": got.frame, "object": obj.id, "objects": session.objects(got.obj_ids),
                         "encoded": got.encoded, "encoder_runs": got.encoder_runs, "correction": got.correction,
                         "candidates": [], "best": None}
                if got.candidates is not None:
                    logits, ious, best = got.candidates
                    reply["candidates"] = [{"index": i, "iou": float(q)} for i, q in enumerate(ious)]
                    reply["best"] = best
                    cands.candidates(got.frame, obj.id, logits, ious)
                return reply
            finally:
                emit.close()
                cands.close()

        self._submit(conn, rid, "prompt_frame", session.id, steps())
        return None

    def _op_choose_candidate(self, conn, rid, header, payload):
        session = self.registry.get(conn, header.get("session"))
        frame = header.get("frame")
        session.position(frame)
        obj_id = header.get("object")
        if isinstance(obj_id, dict):
            obj_id = obj_id.get("id")
        if isinstance(obj_id, bool) or not isinstance(obj_id, int):
            raise ProtocolError("bad_request", f"object must be an object id, got {_short(obj_id)}")
        index = header.get("candidate")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= 2:
            raise ProtocolError("bad_request", f"candidate must be 0, 1 or 2 (SAM 2's three masks, in the order "
                                f"prompt_frame listed them), got {_short(index)}")
        mask = header.get("mask")
        if mask is not None:
            check_mask_path(mask, self.config.write_roots)
        emit = self._emitter(conn, rid, session, header)

        def steps():
            try:
                SessionRegistry.check_open(session)
                obj_ids, written = yield from session.choose_candidate(frame, obj_id, index, mask, emit.prompted)
                return {"frame": frame, "object": obj_id, "candidate": index, "objects": session.objects(obj_ids),
                        "mask": written, "encoder_runs": session.engine.encoder_runs}
            finally:
                emit.close()

        self._submit(conn, rid, "choose_candidate", session.id, steps())
        return None

    def _op_session_info(self, conn, rid, header, payload):
        session = self.registry.get(conn, header.get("session"))

        def steps():
            SessionRegistry.check_open(session)
            engine = session.engine
            cache = engine.features
            return {"session": session.id, "encoder_runs": engine.encoder_runs,
                    "features": {"frames": len(cache), "bytes": cache.bytes, "hits": cache.hits,
                                 "misses": cache.misses, "max_bytes": cache.max_bytes},
                    "objects": session.objects(engine.obj_ids), "prompted": sorted(session.prompted),
                    "memory": engine.memory_bytes()}
            yield  # noqa

        self._submit(conn, rid, "session_info", session.id, steps())
        return None


def one_prompt(session, header: dict, read_roots):
    """The request's ``object`` and ``prompt`` on its ``frame`` as a prompt set (the prompts
    JSON's rules: one object, one prompt), checked against the session's shot."""
    from samroto.core.prompts import from_dict, validate

    from .sessions import check_new_prompts, check_prompt_numbers

    frame = header.get("frame")
    session.position(frame)
    obj = header.get("object")
    if isinstance(obj, int) and not isinstance(obj, bool):
        obj = {"id": obj}
    if not isinstance(obj, dict) or "id" not in obj:
        raise ProtocolError("bad_request", "object must be {\"id\": 1, \"name\": \"hero\"} (or an object id)")
    prompt = header.get("prompt")
    if not isinstance(prompt, dict):
        raise ProtocolError("bad_prompts", "prompt must be an object: {\"points\": [[x, y]], \"labels\": [1]}, "
                            "{\"box\": [x0, y0, x1, y1]} (with points or not) or {\"mask\": \"/abs/mask.png\"}")
    if prompt.get("frame", frame) != frame:
        raise ProtocolError("bad_prompts", f"prompt.frame {_short(prompt.get('frame'))} differs from frame {frame}")
    known = obj.get("name")
    if known is None and isinstance(obj.get("id"), int):
        known = session.names.get(obj["id"])
    document = {"version": 1, "objects": [{"id": obj.get("id"), **({"name": known} if known is not None else {}),
                                           "prompts": [dict(prompt, frame=frame)]}]}
    check_prompt_numbers(document)
    try:
        prompt_set = from_dict(document)
        validate(prompt_set, session.frames.frame_numbers, session.frames.width, session.frames.height)
    except PromptError as exc:
        raise ProtocolError("bad_prompts", str(exc)) from None
    check_new_prompts(session, prompt_set, read_roots)
    return prompt_set


def check_mask_path(mask: Any, write_roots) -> None:
    """Where choose_candidate writes the chosen mask: an absolute .png/.tif/.exr path the
    bridge may write."""
    from . import paths

    if not isinstance(mask, str) or not mask:
        raise ProtocolError("bad_request", "mask must be the absolute path to write the chosen mask to")
    import os

    if not os.path.isabs(mask) or not mask.lower().endswith(MASK_EXTENSIONS):
        raise ProtocolError("bad_request", f"mask: {_short(mask, 120)} must be an absolute path ending in "
                            f"{', '.join(MASK_EXTENSIONS)}")
    paths.check_length(mask, "mask", room=24)
    if write_roots is not None:
        paths.check_inside([os.path.dirname(mask)], write_roots, "mask", "bridge.write_roots")
