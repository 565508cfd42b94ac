"""Fusion's normalised coordinates <-> source pixels (the prompts JSON convention).

Fusion: a point is (x, y) in [0, 1], (0, 0) at the bottom-left corner of the image and
(1, 1) at the top-right; a mask's Width and Height are fractions of the image *width*
(a 0.5 x 0.5 Rectangle is square on a 16:9 frame).
samroto: source pixels, origin at the top-left corner of the top-left pixel, y down.
"""


def point_to_pixels(x, y, width, height):
    """A Fusion point -> (px, py) in source pixels."""
    return (float(x) * width, (1.0 - float(y)) * height)


def pixels_to_point(px, py, width, height):
    """Source pixels -> a Fusion point (inverse of point_to_pixels)."""
    return (float(px) / width, 1.0 - float(py) / height)


def rect_to_box(cx, cy, rect_width, rect_height, width, height):
    """A Fusion rectangle (centre, width, height) -> [x0, y0, x1, y1] in source pixels,
    clipped to the frame. Width and height are fractions of the image width."""
    px, py = point_to_pixels(cx, cy, width, height)
    half_w = abs(float(rect_width)) * width / 2.0
    half_h = abs(float(rect_height)) * width / 2.0
    x0, x1 = max(0.0, px - half_w), min(float(width), px + half_w)
    y0, y1 = max(0.0, py - half_h), min(float(height), py + half_h)
    return [x0, y0, x1, y1]


def box_to_rect(box, width, height):
    """[x0, y0, x1, y1] in source pixels -> (cx, cy, rect_width, rect_height) for Fusion."""
    x0, y0, x1, y1 = [float(v) for v in box]
    cx, cy = pixels_to_point((x0 + x1) / 2.0, (y0 + y1) / 2.0, width, height)
    return (cx, cy, (x1 - x0) / width, (y1 - y0) / width)


def clamp_point(px, py, width, height):
    """Keep a point inside the frame (a centre dragged just off the edge still counts)."""
    return (min(max(px, 0.0), float(width)), min(max(py, 0.0), float(height)))
