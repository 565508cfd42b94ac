"""Review: where SAM 2 says the object was lost.

Each tracked frame's matte event carries SAM 2's object score for every object (a logit:
above 0 the object is there, at or below 0 SAM 2 judges it lost or occluded and its matte is
empty; bridge protocol 1.3). A Track keeps them in a hidden knob per object
(``oN_scores``: "frame:score ..." in Nuke's frames, saved with the script, a re-track
replacing the frames it covered), and **<< lost** / **lost >>** jump the timeline to the
previous / next frame where the current object was lost.
"""

import nuke

from . import group as group_mod
from .kit import hostkit


def scores(node, obj):
    """{Nuke frame: object score} of the object's tracked frames ({} before a Track)."""
    knob = node.knob("o%d_scores" % obj)
    found = {}
    for item in str(knob.value()).split() if knob is not None else ():
        frame, _, score = item.partition(":")
        found[int(frame)] = float(score)
    return found


def store_scores(node, obj, new):
    """Merge a Track's scores (``{Nuke frame: score}``) into the object's knob."""
    name = "o%d_scores" % obj
    if node.knob(name) is None:
        knob = nuke.String_Knob(name, "object scores")
        node.addKnob(knob)
        knob.setVisible(False)
    merged = scores(node, obj)
    merged.update(new)
    node[name].setValue(" ".join("%d:%.4g" % (f, merged[f]) for f in sorted(merged)))


def lost_frames(node, obj):
    return [f for f, s in sorted(scores(node, obj).items()) if s <= 0]


def jump(node, obj, step):
    """Go to the previous (``step`` -1) or next (+1) frame where object ``obj`` was lost;
    returns it."""
    known = scores(node, obj)
    if not known:
        raise hostkit.HostError("Object %d has no object scores yet: Track it (a bridge older than protocol 1.3 "
                                "sends none)." % obj, "no_scores")
    lost = lost_frames(node, obj)
    here = nuke.frame()
    ahead = [f for f in lost if f > here] if step > 0 else [f for f in reversed(lost) if f < here]
    if not ahead:
        group_mod.set_status(node, "object %d: no lost frame %s frame %d (%d lost of %d tracked)" % (
            obj, "after" if step > 0 else "before", here, len(lost), len(known)))
        return None
    nuke.frame(ahead[0])
    group_mod.set_status(node, "object %d lost on frame %d (score %.2f); %d lost of %d tracked" % (
        obj, ahead[0], known[ahead[0]], len(lost), len(known)))
    return ahead[0]
