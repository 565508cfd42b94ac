"""Matte -> closed outline with a fixed number of points (for "Convert to Mask").

Blender's Python has numpy but no samroto core, so the add-on traces the outline itself,
small and self-contained: threshold, keep the largest 4-connected region, follow its outer
boundary along pixel edges, smooth the staircase, resample to N evenly spaced points. The
same N on every frame (Blender's mask shape keys need it) and a start point that follows the
previous frame's keep the spline from twisting between keys.

Arrays are indexed ``[row, column]`` with row 0 at the bottom (Blender's pixel order), so
outlines come out in pixel units with y up; divide by the size for normalised clip space.
"""

import math

import numpy as np

WORK_SIZE = 320  # outlines are traced on a copy at most this many pixels on its long side


def downsample(matte, limit=WORK_SIZE):
    """Area-average ``matte`` so its long side is <= limit; returns (array, scale)."""
    h, w = matte.shape
    step = max(1, int(math.ceil(max(h, w) / float(limit))))
    if step == 1:
        return matte.astype(np.float32), 1
    ph, pw = -h % step, -w % step
    padded = np.pad(matte.astype(np.float32), ((0, ph), (0, pw)), mode="edge")
    small = padded.reshape(padded.shape[0] // step, step, padded.shape[1] // step, step).mean(axis=(1, 3))
    return small, step


def largest_region(binary):
    """The largest 4-connected region of a boolean array (run-length labelling)."""
    runs = []  # (row, start, end) with end exclusive
    for row in range(binary.shape[0]):
        line = np.concatenate(([0], binary[row].view(np.uint8), [0]))
        edges = np.flatnonzero(np.diff(line))
        runs.extend((row, int(s), int(e)) for s, e in zip(edges[::2], edges[1::2]))
    if not runs:
        return np.zeros_like(binary)
    parent = list(range(len(runs)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    previous, current, row_of = [], [], None
    for index, (row, start, end) in enumerate(runs):
        if row != row_of:
            previous = current if row_of == row - 1 else []
            current, row_of = [], row
        for other in previous:
            _, o_start, o_end = runs[other]
            if o_start < end and start < o_end:  # overlapping columns: 4-connected
                parent[find(other)] = find(index)
        current.append(index)
    areas = {}
    for index, (_, start, end) in enumerate(runs):
        root = find(index)
        areas[root] = areas.get(root, 0) + end - start
    best = max(areas, key=areas.get)
    out = np.zeros_like(binary)
    for index, (row, start, end) in enumerate(runs):
        if find(index) == best:
            out[row, start:end] = True
    return out


def outer_boundary(region):
    """Outer boundary of a 4-connected region: pixel-corner vertices, counter-clockwise."""
    h, w = region.shape
    padded = np.zeros((h + 2, w + 2), bool)
    padded[1:-1, 1:-1] = region
    inside = padded[1:-1, 1:-1]
    rows, cols = np.nonzero(inside)
    if rows.size == 0:
        return np.zeros((0, 2))
    # Directed crack edges with the region on their left; vertex (x, y) = (col, row) corners.
    edges = {}

    def add(mask, start, end):
        r, c = rows[mask], cols[mask]
        for x0, y0, x1, y1 in zip(c + start[0], r + start[1], c + end[0], r + end[1]):
            edges.setdefault((int(x0), int(y0)), []).append((int(x1), int(y1)))

    add(~padded[rows, cols + 1], (0, 0), (1, 0))       # below is outside: edge left->right
    add(~padded[rows + 2, cols + 1], (1, 1), (0, 1))   # above is outside: right->left
    add(~padded[rows + 1, cols], (0, 1), (0, 0))       # left is outside: top->bottom
    add(~padded[rows + 1, cols + 2], (1, 0), (1, 1))   # right is outside: bottom->top
    # Start at the lowest-leftmost vertex: it lies on the outer boundary.
    start = min(edges, key=lambda v: (v[1], v[0]))
    loop, vertex, came = [start], start, (1, 0)
    while True:
        options = edges[vertex]
        if len(options) == 1:
            nxt = options[0]
        else:  # a pinch (diagonal touch): keep turning left so the loop stays outermost
            nxt = max(options, key=lambda o: _turn(came, (o[0] - vertex[0], o[1] - vertex[1])))
        options.remove(nxt)
        came = (nxt[0] - vertex[0], nxt[1] - vertex[1])
        vertex = nxt
        if vertex == start:
            break
        loop.append(vertex)
    return np.asarray(loop, dtype=np.float64)


def _turn(a, b):
    """Larger for left turns: 1 left, 0 straight, -1 right."""
    return a[0] * b[1] - a[1] * b[0]


def smooth(loop, passes=2):
    """Cut the pixel staircase: circular moving average of neighbours."""
    for _ in range(passes):
        loop = (np.roll(loop, 1, axis=0) + 2 * loop + np.roll(loop, -1, axis=0)) / 4.0
    return loop


def perimeter(loop):
    return float(np.sum(np.hypot(*(np.roll(loop, -1, axis=0) - loop).T))) if len(loop) > 1 else 0.0


def resample(loop, count, near=None):
    """``count`` points evenly spaced along the closed loop; the first one nearest ``near``."""
    if near is not None:
        first = int(np.argmin(np.hypot(*(loop - np.asarray(near)).T)))
        loop = np.roll(loop, -first, axis=0)
    closed = np.vstack([loop, loop[:1]])
    seg = np.hypot(*np.diff(closed, axis=0).T)
    dist = np.concatenate(([0.0], np.cumsum(seg)))
    targets = np.linspace(0.0, dist[-1], count, endpoint=False)
    x = np.interp(targets, dist, closed[:, 0])
    y = np.interp(targets, dist, closed[:, 1])
    return np.stack([x, y], axis=1)


def outline(matte, threshold=0.5):
    """The smoothed outer outline of ``matte``'s largest region in pixel units (y up), or None."""
    small, scale = downsample(matte)
    region = largest_region(small >= threshold)
    loop = outer_boundary(region)
    if len(loop) < 4:
        return None
    return smooth(loop) * scale


def point_count(perimeters, spacing=12.0, lo=8, hi=64):
    """Points per spline: about one per ``spacing`` pixels of the longest outline."""
    longest = max(perimeters) if perimeters else 0.0
    return int(max(lo, min(hi, round(longest / spacing))))


def fit_sequence(outlines, count=None):
    """Per-frame outlines (None where empty) -> same-length point arrays for every frame.

    Empty frames collapse onto the nearest shape's centre (a zero-area spline renders
    nothing), so every frame still has a key. Returns (count, [array(count, 2) per frame]).
    """
    if count is None:
        count = point_count([perimeter(o) for o in outlines if o is not None])
    fitted, previous = [], None
    for loop in outlines:
        if loop is None:
            fitted.append(None)
            continue
        near = previous[0] if previous is not None else loop[np.argmax(loop[:, 1] - 1e-3 * loop[:, 0])]
        previous = resample(loop, count, near)
        fitted.append(previous)
    known = [i for i, f in enumerate(fitted) if f is not None]
    for i, f in enumerate(fitted):
        if f is None:
            if known:
                j = min(known, key=lambda k: abs(k - i))
                centre = fitted[j].mean(axis=0)
            else:
                centre = np.zeros(2)
            fitted[i] = np.repeat(centre[None, :], count, axis=0)
    return count, fitted
