"""Convert to Roto: a Roto node with animated Bezier shapes fitted to the node's mattes.

The spline fitting is samroto's shared exporter (``samroto.core.splines.export``, which
needs numpy, OpenCV and OpenImageIO), so it runs in samroto's Python through the host kit
(``hostkit.export_shapes``): it writes a .nk file holding one Roto node, which is pasted
here with ``nuke.nodePaste``.
"""

import os
import tempfile

import nuke

from . import group as group_mod
from . import knobs
from .kit import HOW_TO_SET, hostkit, samroto_python


def matte_sequences(group):
    """[(object name, matte pattern)] of the objects with matte files on disk."""
    found = []
    for obj in knobs.object_ids(group):
        pattern = group_mod.matte_pattern(group, obj)
        if pattern and hostkit.frames_on_disk(pattern):
            found.append((knobs.object_info(group, obj)["name"], pattern))
    return found


def _parent(group):
    path = group.fullName().rsplit(".", 1)
    if len(path) == 1:
        return nuke.root()
    nuke.root().begin()
    try:
        return nuke.toNode(path[0]) or nuke.root()
    finally:
        nuke.root().end()


def convert(group):
    """Make the Roto node next to ``group``; returns it."""
    objects = matte_sequences(group)
    out_path = os.path.join(tempfile.mkdtemp(prefix="samroto_roto_"), "roto.nk").replace("\\", "/")
    group_mod.set_status(group, "fitting Roto shapes...")
    hostkit.export_shapes(samroto_python(), "nuke", out_path, objects,
                          options=["--name", "%s_roto" % group.name()], how_to_set=HOW_TO_SET)
    parent = _parent(group)
    parent.begin()  # a button's script runs inside its group: paste beside the node instead
    try:
        roto = nuke.nodePaste(out_path)
    finally:
        parent.end()
    group_mod.set_status(group, "Roto node %s made" % (roto.name() if roto is not None else ""))
    return roto
