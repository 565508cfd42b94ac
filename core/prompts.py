"""The prompts JSON shared by ``samroto track``, the bridge and the host plugins.

Pure Python (no numpy, no torch) so hosts and the bridge client can use the same rules.
Schema version 1 (docs/prompts.md)::

    {"version": 1,
     "objects": [{"id": 1, "name": "hero",
                  "prompts": [{"frame": 1001, "points": [[x, y], ...], "labels": [1, 0, ...]},
                              {"frame": 1010, "box": [x0, y0, x1, y1]},
                              {"frame": 1020, "box": [...], "points": [...], "labels": [...]},
                              {"frame": 1030, "mask": "relative/or/absolute/path.png"}]}]}

Frame numbers are the source's own; coordinates are source pixels, origin at the top-left
corner of the top-left pixel, y down.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

SCHEMA_VERSION = 1


class PromptError(ValueError):
    """A prompt is wrong; the message names the object, frame and field, and says what to do."""


@dataclass
class Prompt:
    """What the artist gave one object on one frame: points (+labels), a box, or a mask file."""

    frame: int
    points: list[tuple[float, float]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    box: tuple[float, float, float, float] | None = None
    mask: str | None = None  # path as written; resolved against PromptSet.base_dir

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"frame": self.frame}
        if self.points:
            out["points"] = [[x, y] for x, y in self.points]
            out["labels"] = list(self.labels)
        if self.box is not None:
            out["box"] = list(self.box)
        if self.mask is not None:
            out["mask"] = self.mask
        return out


@dataclass
class ObjectPrompts:
    id: int
    name: str
    prompts: list[Prompt] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "prompts": [p.to_dict() for p in self.prompts]}


@dataclass
class PromptSet:
    objects: list[ObjectPrompts] = field(default_factory=list)
    base_dir: str | None = None  # where relative mask paths are resolved (the JSON's folder)

    def to_dict(self) -> dict:
        return {"version": SCHEMA_VERSION, "objects": [o.to_dict() for o in self.objects]}

    def to_json(self, indent: int = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def object(self, obj_id: int) -> ObjectPrompts:
        """The object with this id, created (named ``obj<id>``) if it is new."""
        for obj in self.objects:
            if obj.id == obj_id:
                return obj
        obj = ObjectPrompts(id=obj_id, name=f"obj{obj_id}")
        self.objects.append(obj)
        return obj

    def mask_path(self, prompt: Prompt) -> str:
        """Absolute path of a mask prompt's file."""
        path = os.path.expanduser(prompt.mask or "")
        if not os.path.isabs(path) and self.base_dir:
            path = os.path.join(self.base_dir, path)
        return path

    def frames(self) -> list[int]:
        return sorted({p.frame for o in self.objects for p in o.prompts})

    def by_frame(self) -> list[tuple[int, ObjectPrompts, Prompt]]:
        """Every prompt as (frame, object, prompt), in frame order then object order."""
        items = [(p.frame, o, p) for o in self.objects for p in o.prompts]
        order = {id(o): i for i, o in enumerate(self.objects)}
        return sorted(items, key=lambda t: (t[0], order[id(t[1])]))


# ---------------------------------------------------------------- parsing


def _where(obj_label: str, frame: Any = None, fld: str | None = None) -> str:
    parts = [obj_label]
    if frame is not None:
        parts.append(f"frame {frame}")
    if fld:
        parts.append(f"'{fld}'")
    return ", ".join(parts)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PromptError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or int(value) != value:
        raise PromptError(f"{where}: expected a whole number, got {value!r}")
    return int(value)


def _parse_prompt(raw: Any, label: str) -> Prompt:
    if not isinstance(raw, Mapping):
        raise PromptError(f"{label}: each prompt must be an object like "
                          f'{{"frame": 1001, "points": [[x, y]], "labels": [1]}}, got {raw!r}')
    unknown = set(raw) - {"frame", "points", "labels", "box", "mask"}
    if "frame" not in raw:
        raise PromptError(f"{label}: a prompt has no 'frame'; add the source frame number it was drawn on")
    frame = _int(raw["frame"], _where(label, None, "frame"))
    if unknown:
        raise PromptError(f"{_where(label, frame)}: unknown field(s) {sorted(unknown)}; "
                          "allowed: frame, points, labels, box, mask")
    prompt = Prompt(frame=frame)
    has_points = "points" in raw or "labels" in raw
    if has_points:
        points, labels = raw.get("points"), raw.get("labels")
        if not isinstance(points, list) or not points:
            raise PromptError(f"{_where(label, frame, 'points')}: expected a non-empty list of [x, y]")
        if labels is None:
            raise PromptError(f"{_where(label, frame, 'labels')}: missing; give one label per point "
                              "(1 = include, 0 = exclude)")
        if not isinstance(labels, list) or len(labels) != len(points):
            n = len(labels) if isinstance(labels, list) else labels
            raise PromptError(f"{_where(label, frame, 'labels')}: {len(points)} point(s) but "
                              f"{n} label(s); give exactly one label per point")
        for i, pt in enumerate(points):
            if not isinstance(pt, (list, tuple)) or len(pt) != 2:
                raise PromptError(f"{_where(label, frame, 'points')}[{i}]: expected [x, y], got {pt!r}")
            where = f"{_where(label, frame, 'points')}[{i}]"
            prompt.points.append((_number(pt[0], where), _number(pt[1], where)))
        for i, lab in enumerate(labels):
            if isinstance(lab, bool) or lab not in (0, 1):
                raise PromptError(f"{_where(label, frame, 'labels')}[{i}]: label must be 1 (include) "
                                  f"or 0 (exclude), got {lab!r}")
            prompt.labels.append(int(lab))
    if "box" in raw:
        box = raw["box"]
        if not isinstance(box, (list, tuple)) or len(box) != 4:
            raise PromptError(f"{_where(label, frame, 'box')}: expected [x0, y0, x1, y1], got {box!r}")
        prompt.box = tuple(_number(v, _where(label, frame, "box")) for v in box)  # type: ignore[assignment]
    if "mask" in raw:
        if has_points or "box" in raw:
            raise PromptError(f"{_where(label, frame, 'mask')}: a mask prompt cannot be combined with "
                              "points or a box on the same prompt; give them as separate prompts")
        if not isinstance(raw["mask"], str) or not raw["mask"]:
            raise PromptError(f"{_where(label, frame, 'mask')}: expected a path to a mask image")
        prompt.mask = raw["mask"]
    if not prompt.points and prompt.box is None and prompt.mask is None:
        raise PromptError(f"{_where(label, frame)}: the prompt has no points, box or mask; add one")
    return prompt


def from_dict(data: Any, base_dir: str | None = None) -> PromptSet:
    """Parse a decoded prompts document (schema checks only; see :func:`validate` for the clip)."""
    if not isinstance(data, Mapping):
        raise PromptError("prompts: the document must be an object with 'version' and 'objects'")
    version = data.get("version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise PromptError(f"prompts: unsupported version {version!r}; this samroto reads version "
                          f"{SCHEMA_VERSION}. Upgrade samroto or re-export the prompts")
    objects = data.get("objects")
    if not isinstance(objects, list) or not objects:
        raise PromptError("prompts: 'objects' must be a non-empty list of objects to track")
    out = PromptSet(base_dir=base_dir)
    seen: dict[int, str] = {}
    for index, raw in enumerate(objects):
        if not isinstance(raw, Mapping):
            raise PromptError(f"prompts: objects[{index}] must be an object with 'id' and 'prompts'")
        if "id" not in raw:
            raise PromptError(f"prompts: objects[{index}] has no 'id'; give each object a unique whole number")
        obj_id = _int(raw["id"], f"objects[{index}] 'id'")
        name = raw.get("name", f"obj{obj_id}")
        if not isinstance(name, str) or not name.strip():
            raise PromptError(f"object {obj_id}: 'name' must be a non-empty string")
        label = f"object {obj_id} ({name!r})"
        if obj_id in seen:
            raise PromptError(f"{label}: duplicate object id {obj_id} (also used by {seen[obj_id]!r}); "
                              "give each object its own id")
        seen[obj_id] = name
        prompts = raw.get("prompts")
        if not isinstance(prompts, list) or not prompts:
            raise PromptError(f"{label}: has no prompts; add at least one point, box or mask, "
                              "or remove the object")
        obj = ObjectPrompts(id=obj_id, name=name, prompts=[_parse_prompt(p, label) for p in prompts])
        out.objects.append(obj)
    return out


def load_prompts(source: "str | os.PathLike | Mapping") -> PromptSet:
    """Read a prompts JSON file (or an already-decoded dict). Relative mask paths resolve
    against the file's folder."""
    if isinstance(source, Mapping):
        return from_dict(source)
    path = os.fspath(source)
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise PromptError(f"{path}: cannot read the prompts file: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PromptError(f"{path}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}. "
                          "Fix the file (a JSON linter shows the spot)") from None
    try:
        return from_dict(data, base_dir=os.path.dirname(os.path.abspath(path)))
    except PromptError as exc:
        raise PromptError(f"{path}: {exc}") from None


# ---------------------------------------------------------------- validation


def validate(prompt_set: PromptSet, frame_numbers: Sequence[int] | range, width: int, height: int,
             check_files: bool = True) -> None:
    """Check prompts against a clip before any work starts: frames exist, boxes and points lie
    in the image, mask files exist. Raises PromptError naming object, frame and field."""
    if not prompt_set.objects:
        raise PromptError("prompts: no objects to track; add at least one object with a prompt")
    frames = frame_numbers if isinstance(frame_numbers, range) else set(frame_numbers)
    first, last = (min(frame_numbers), max(frame_numbers)) if len(frame_numbers) else (None, None)
    ids: dict[int, str] = {}
    for obj in prompt_set.objects:
        label = f"object {obj.id} ({obj.name!r})"
        if obj.id in ids:
            raise PromptError(f"{label}: duplicate object id {obj.id}; give each object its own id")
        ids[obj.id] = obj.name
        if not obj.prompts:
            raise PromptError(f"{label}: has no prompts; add at least one point, box or mask, or remove it")
        for p in obj.prompts:
            if p.frame not in frames:
                raise PromptError(f"{_where(label, p.frame, 'frame')}: frame {p.frame} is not in the source "
                                  f"(frames {first}-{last}); use the source's own frame numbers")
            if len(p.labels) != len(p.points):
                raise PromptError(f"{_where(label, p.frame, 'labels')}: {len(p.points)} point(s) but "
                                  f"{len(p.labels)} label(s); give one label per point")
            for i, lab in enumerate(p.labels):
                if lab not in (0, 1):
                    raise PromptError(f"{_where(label, p.frame, 'labels')}[{i}]: label must be 1 or 0, got {lab!r}")
            for i, (x, y) in enumerate(p.points):
                if not (0 <= x <= width and 0 <= y <= height):
                    raise PromptError(f"{_where(label, p.frame, 'points')}[{i}]: ({x:g}, {y:g}) is outside the "
                                      f"{width}x{height} image; coordinates are source pixels, origin top-left, y down")
            if p.box is not None:
                x0, y0, x1, y1 = p.box
                if x1 <= x0 or y1 <= y0:
                    raise PromptError(f"{_where(label, p.frame, 'box')}: [{x0:g}, {y0:g}, {x1:g}, {y1:g}] is inverted "
                                      "or empty; write it as [left, top, right, bottom] with right > left, bottom > top")
                if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
                    raise PromptError(f"{_where(label, p.frame, 'box')}: [{x0:g}, {y0:g}, {x1:g}, {y1:g}] is outside "
                                      f"the {width}x{height} image; coordinates are source pixels, origin top-left, y down")
            if p.mask is not None and check_files:
                path = prompt_set.mask_path(p)
                if not os.path.isfile(path):
                    raise PromptError(f"{_where(label, p.frame, 'mask')}: mask file {path} does not exist")


# ---------------------------------------------------------------- CLI forms

_OBJ_FRAME = r"\s*(-?\d+)\s*:\s*(-?\d+)\s*:"
_NUM = r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*"
_POINT_RE = re.compile(rf"^{_OBJ_FRAME}{_NUM},{_NUM}(?::\s*(neg|pos|0|1)\s*)?$", re.IGNORECASE)
_BOX_RE = re.compile(rf"^{_OBJ_FRAME}{_NUM},{_NUM},{_NUM},{_NUM}$")


def parse_point_arg(text: str) -> tuple[int, int, float, float, int]:
    """``OBJ:FRAME:X,Y[:neg]`` -> (obj_id, frame, x, y, label)."""
    m = _POINT_RE.match(text)
    if not m:
        raise PromptError(f"--point {text!r}: expected OBJ:FRAME:X,Y or OBJ:FRAME:X,Y:neg "
                          "(e.g. --point 1:1001:640,360)")
    obj, frame, x, y, flag = m.groups()
    label = 0 if (flag or "").lower() in ("neg", "0") else 1
    return int(obj), int(frame), float(x), float(y), label


def parse_box_arg(text: str) -> tuple[int, int, tuple[float, float, float, float]]:
    """``OBJ:FRAME:X0,Y0,X1,Y1`` -> (obj_id, frame, box)."""
    m = _BOX_RE.match(text)
    if not m:
        raise PromptError(f"--box {text!r}: expected OBJ:FRAME:X0,Y0,X1,Y1 (e.g. --box 1:1001:100,80,420,360)")
    obj, frame, *coords = m.groups()
    return int(obj), int(frame), tuple(float(c) for c in coords)  # type: ignore[return-value]


def from_cli(points: Iterable[str] = (), boxes: Iterable[str] = (), into: PromptSet | None = None) -> PromptSet:
    """Build (or extend) a PromptSet from ``--point`` / ``--box`` flags. Points of one object
    on one frame go together; a box joins that object's points on the same frame."""
    out = into if into is not None else PromptSet()

    def prompt_for(obj_id: int, frame: int) -> Prompt:
        obj = out.object(obj_id)
        for p in obj.prompts:
            if p.frame == frame and p.mask is None:
                return p
        p = Prompt(frame=frame)
        obj.prompts.append(p)
        return p

    for text in points:
        obj_id, frame, x, y, label = parse_point_arg(text)
        p = prompt_for(obj_id, frame)
        p.points.append((x, y))
        p.labels.append(label)
    for text in boxes:
        obj_id, frame, box = parse_box_arg(text)
        p = prompt_for(obj_id, frame)
        if p.box is not None:
            raise PromptError(f"--box {text!r}: object {obj_id} already has a box on frame {frame}; "
                              "one box per object per frame")
        p.box = box
    return out
