"""Convert to Roto: a Roto node with animated Bezier shapes fitted to the node's mattes.

The spline fitting is samroto's shared code (``samroto.core.splines``), which needs numpy
and OpenCV, so it runs in samroto's own Python: ``python -m
samroto.plugins.nuke.roto_export`` writes a .nk file holding one Roto node, which is pasted
here with ``nuke.nodePaste``.
"""

import glob
import os
import re
import subprocess
import tempfile

import nuke

from . import knobs, link, node as node_mod


class RotoError(Exception):
    """No Roto node can be made; the message says why."""


def _frames_on_disk(pattern):
    regex = re.compile(re.escape(os.path.basename(pattern)).replace(re.escape("%04d"), r"(\d+)") + "$")
    found = []
    for path in glob.glob(pattern.replace("%04d", "*")):
        m = regex.match(os.path.basename(path))
        if m:
            found.append(int(m.group(1)))
    return sorted(found)


def export_command(group, out_path):
    python = link.samroto_python()
    if not python:
        raise RotoError("samroto's Python is unknown: set SAMROTO_PYTHON or reinstall the plugin "
                        "with `samroto install nuke`.")
    cmd = [python, "-m", "samroto.plugins.nuke.roto_export", out_path,
           "--node-name", "%s_roto" % group.name()]
    found = False
    for obj in knobs.object_ids(group):
        info = knobs.object_info(group, obj)
        pattern = node_mod.matte_pattern(group, obj)
        if pattern and _frames_on_disk(pattern):
            cmd += ["--object", "%s=%s" % (info["name"], pattern)]
            found = True
    if not found:
        raise RotoError("There are no mattes to convert yet: Track first.")
    return cmd


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
    folder = tempfile.mkdtemp(prefix="samroto_roto_")
    out_path = os.path.join(folder, "roto.nk").replace("\\", "/")
    cmd = export_command(group, out_path)
    node_mod.set_status(group, "fitting Roto shapes...")
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    if proc.returncode != 0 or not os.path.isfile(out_path):
        lines = (proc.stderr or proc.stdout or "").strip().splitlines()
        raise RotoError("Fitting the Roto shapes failed: %s" % (lines[-1] if lines else "exit %d" % proc.returncode))
    parent = _parent(group)
    parent.begin()  # a button's script runs inside its group: paste beside the node instead
    try:
        roto = nuke.nodePaste(out_path)
    finally:
        parent.end()
    node_mod.set_status(group, "Roto node %s made" % (roto.name() if roto is not None else ""))
    return roto
