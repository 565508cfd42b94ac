"""Nuke handles -> samroto's prompts JSON (schema v1). Pure Python, no ``nuke``.

Nuke's pixel space has its origin at the bottom-left corner of the image, y up; samroto's
prompts are in source pixels with the origin at the top-left corner, y down. Both count
whole pixels from the image's corner, so the conversion is y' = height - y.
"""


def point_to_pixels(x, y, height):
    return [float(x), float(height) - float(y)]


def box_to_pixels(x, y, r, t, height):
    """A Nuke box (x, y, r, t: left, bottom, right, top) -> [x0, y0, x1, y1], y down."""
    left, right = sorted((float(x), float(r)))
    bottom, top = sorted((float(y), float(t)))
    return [left, float(height) - top, right, float(height) - bottom]


def document(objects, height):
    """objects: [{"id", "name", "points": [(frame, x, y, positive)], "boxes": [(frame, x, y,
    r, t)]}] in Nuke space -> the prompts JSON dict (frames sorted, one entry per frame;
    one box per frame, the last one given wins)."""
    out = []
    for obj in objects:
        frames = {}
        for frame, x, y, positive in obj.get("points", ()):
            entry = frames.setdefault(int(frame), {"frame": int(frame)})
            entry.setdefault("points", []).append(point_to_pixels(x, y, height))
            entry.setdefault("labels", []).append(1 if positive else 0)
        for frame, x, y, r, t in obj.get("boxes", ()):
            entry = frames.setdefault(int(frame), {"frame": int(frame)})
            entry["box"] = box_to_pixels(x, y, r, t, height)
        if frames:
            out.append({"id": int(obj["id"]), "name": obj["name"],
                        "prompts": [frames[f] for f in sorted(frames)]})
    return {"version": 1, "objects": out}
