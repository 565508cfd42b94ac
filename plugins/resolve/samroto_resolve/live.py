"""The frame under the playhead's matte at once, without a track (the interactive loop).

Resolve's scripting API sees no clicks on the viewer, so a prompt is what it always is
here: the prompt tools of the clip's Fusion comp (docs/resolve.md). **Preview Frame**
sends each object's prompt on the comp's current frame to the bridge and shows the matte
it gives at once in the comp, as a Loader ``samroto_<object>_preview`` on that frame (view
it in the Fusion page). A single include point gives SAM 2's three candidate masks (their
files and predicted IoU are listed); **Use Candidate N** makes one the object's prompt on
that frame: the bridge writes its mask, and a Loader ``samroto_<object>_mask`` reading it
is placed on the frame, which is how any matte becomes a mask prompt (docs/resolve.md,
"Mask prompts"). Track then uses it, like any prompt in the comp.

The bridge session stays open as long as this ``Live`` object: in the samroto window (its
Controller keeps one), a second preview on a frame reuses the frame's image features (the
image encoder runs once per frame). The no-window scripts run once per menu click, a new
connection each time, so each of their previews runs the image encoder again.
"""

import json
import os
from typing import Any

from . import clip as cliplib
from . import finishing, media, prompts
from .kit import HOW_TO_SET, hostkit
from .workflow import DEFAULTS, installed_settings, prompted_clip


OVERLAY = "samroto_auto_overlay"  # the Loader showing Show Masks' numbered overlay picture


class Live(object):
    """The live session on the clip under the playhead. ``connect``: how to reach the bridge
    (default: the running one, else one started with samroto's Python)."""

    def __init__(self, resolve, connect=None, **settings):
        installed = installed_settings()
        given = {k: v for k, v in settings.items() if v is not None}
        self.settings = dict(DEFAULTS, **installed)
        self.settings.update(given)
        self.settings["python"] = hostkit.samroto_python(given.get("python"), installed.get("python"))
        self.resolve = resolve
        self._connect = connect or (lambda: hostkit.connect(
            python=self.settings["python"], config_dir=self.settings["config_dir"], name="samroto-resolve",
            how_to_set=HOW_TO_SET))
        self.session = None  # type: Any  # the hostkit.LiveSession, made by refresh()
        self.previews = {}  # type: dict  # object name -> the latest hostkit.FramePreview
        self.refresh()

    def refresh(self):
        """Read the clip under the playhead again (the colorist may have moved); a new clip
        gets a new session."""
        _, _, self.item = cliplib.current_item(self.resolve)
        self.clip, self.comp, self.clock = prompted_clip(self.item)
        folder = os.path.join(self.clip.matte_dir(self.settings["matte_root"] or None), "live")
        first, last = self.clip.all_frames
        fresh = hostkit.LiveSession(self._connect, self.clip.source, first, last, folder, color=self.clip.color,
                                    model=self.settings["model"])
        if self.session is None or self.session.key() != fresh.key() or self.session.folder != folder:
            if self.session is not None:
                self.session.close()
            self.session = fresh
            self.previews = {}
        # the preview is finished as the track will be: with the clip's Finish values, else
        # SAM 2's own decision (fast; the bridge's settings then finish the track)
        self.session.finish = finishing.read(self.comp) or False
        return self

    @property
    def frame(self):
        """The source frame under the comp's playhead."""
        return self.clock.to_frame(self.comp.CurrentTime)

    def _objects(self, masks=True):
        """{name: (id, prompt on the current frame or None)} from the comp's prompt tools."""
        document, _ = prompts.read_prompts(self.comp, self.clip)
        if not masks:
            document = dict(document, objects=[dict(o, prompts=[p for p in o["prompts"] if "mask" not in p])
                                               for o in document["objects"]])
        frame = self.frame
        return {o["name"]: (o["id"], hostkit.frame_prompt(document, o["id"], frame)) for o in document["objects"]}

    def preview(self, out=print):
        """Every object's matte on the current frame; returns {name: FramePreview}."""
        frame, shown = self.frame, {}
        for name, (obj_id, prompt) in sorted(self._objects().items()):
            if prompt is None:
                continue
            got = self.session.prompt(frame, obj_id, name, prompt)
            self._show(name, got)
            shown[name] = got
            out("samroto: %s, frame %d: %s" % (name, frame, describe(got)))
            for cand in got.candidates:
                out("samroto:   candidate %d (IoU %.2f)%s: %s" % (cand.index + 1, cand.iou,
                                                                  " shown" if cand.index == got.best else "", cand.path))
        if not shown:
            out("samroto: no prompt on frame %d: drag a samroto prompt tool there (Add Prompts)." % frame)
        return shown

    def which(self):
        """The object a candidate choice is for: the one whose prompt tool is the comp's active
        (selected) tool, else the only object with a single include point on the frame."""
        objects = self._objects(masks=False)
        active = getattr(self.comp, "ActiveTool", None)
        if active is not None:
            m = prompts.NAME_RE.match(str(active.GetAttrs().get("TOOLS_Name", "")))
            if m and m.group("obj") in objects:
                return m.group("obj")
        single = [n for n, (_, p) in sorted(objects.items())
                  if p is not None and "box" not in p and p.get("labels") == [1]]
        if len(single) == 1:
            return single[0]
        raise hostkit.HostError("Select the include point (samroto_<object>_pos) of the object to choose for: "
                                "%s have one on frame %d." % (", ".join(single) or "no objects", self.frame),
                                "no_candidates")

    def choose(self, name, index, out=print):
        """SAM 2's candidate ``index`` (1..3) of object ``name``'s single include point on the
        current frame (None: ``which()``) becomes its mask prompt there (a mask Loader);
        returns the FramePreview."""
        frame = self.frame
        name = name or self.which()
        found = self._objects(masks=False).get(name)
        if found is None or found[1] is None:
            raise hostkit.HostError("%s has no prompt on frame %d: place its include point there first." % (name, frame))
        obj_id, click = found
        clicked = self.session.prompt(frame, obj_id, name, click)
        if not clicked.candidates:
            raise hostkit.HostError("SAM 2 gives three candidates for a single include point; %s has more prompts on "
                                    "frame %d (switch the others off for this frame)." % (name, frame), "no_candidates")
        safe = cliplib.safe_name(name).replace(".", "_")
        path = os.path.join(self.session.folder, "masks", "%s.%d.candidate%d.png" % (safe, frame, index))
        got = self.session.choose(frame, obj_id, index - 1, path)
        t = self.clock.to_time(frame)
        media.put_loader(self.comp, mask_tool_name(self.comp, safe, t), got.mask, t, t)
        got = hostkit.FramePreview(frame, obj_id, got.paths, clicked.candidates, index - 1, False,
                                   got.encoder_runs, False, got.seconds, got.mask)
        self._show(name, got)
        out("samroto: %s, frame %d: candidate %d is its prompt now (samroto_%s_mask reads %s); Track uses it."
            % (name, frame, index, safe, got.mask))
        return got

    def _show(self, name, got):
        self.previews[name] = got
        path = got.paths.get(got.object_id)
        if path:
            t = self.clock.to_time(got.frame)
            media.put_loader(self.comp, "samroto_%s_preview" % cliplib.safe_name(name).replace(".", "_"), path, t, t)

    # -- segment everything (issue 20) -------------------------------------------------------
    def segment(self, out=print, progress=None, cancelled=None):
        """SAM 2's automatic masks on the current frame: a numbered list, and the overlay
        picture (the frame with the masks tinted and numbered) as a Loader
        ``samroto_auto_overlay`` on that frame. Returns the AutoMasks."""
        return self.show_masks(self.find_masks(self.frame, progress, cancelled), out)

    def find_masks(self, frame, progress=None, cancelled=None):
        """The bridge's automatic masks on source ``frame``, listed next to the masks so a
        later script run can pick from them without segmenting again. Touches nothing in
        Resolve: the window runs it on a worker thread (``progress(done, total)``,
        ``cancelled``: an Event that stops it within a round)."""
        found = self.session.segment(frame, options=self.settings.get("automask") or None, progress=progress,
                                     cancelled=cancelled)
        with open(self._listing(frame), "w") as fh:
            json.dump([{"id": m.index, "bbox": [m.bbox[0], m.bbox[1], m.bbox[2] - m.bbox[0] - 1,
                                                m.bbox[3] - m.bbox[1] - 1], "area": m.area,
                        "predicted_iou": m.predicted_iou, "stability_score": m.stability_score,
                        "file": m.mask_path, "point": list(m.point) if m.point else None, "rle": m.rle}
                       for m in found], fh)
        return found

    def show_masks(self, found, out=print):
        """The overlay Loader on the masks' frame and the numbered list (Resolve's thread)."""
        t = self.clock.to_time(found.frame)
        if found.overlay:
            media.put_loader(self.comp, OVERLAY, found.overlay, t, t)
        out("samroto: frame %d: %d automatic masks in %.1f s%s" % (
            found.frame, len(found), found.seconds,
            " (see them numbered: the Loader %s)" % OVERLAY if found.overlay else ""))
        for m in found:
            out("samroto:   %d: %d px, box (%d, %d)-(%d, %d), IoU %.2f" % (m.index, m.area, m.bbox[0], m.bbox[1],
                                                                         m.bbox[2], m.bbox[3], m.predicted_iou))
        if not found:
            out("samroto: no automatic mask on frame %d: place prompts by hand (Add Prompts)." % found.frame)
        return found

    def _listing(self, frame):
        folder = os.path.join(self.session.folder, "auto")
        if not os.path.isdir(folder):
            os.makedirs(folder)
        return os.path.join(folder, "samroto.%d.json" % frame)

    def masks(self):
        """The automatic masks Show Masks found on the current frame (hostkit.AutoMask)."""
        frame = self.frame
        try:
            with open(self._listing(frame)) as fh:
                entries = json.load(fh)
        except (OSError, ValueError):
            raise hostkit.HostError("No automatic masks on frame %d yet: run Show Masks there first." % frame,
                                    "no_masks")
        return [hostkit.auto_mask(e, frame) for e in entries]

    def use_masks(self, numbers=None, out=print):
        """Each picked automatic mask becomes an object's mask prompt on the current frame (a
        mask Loader ``samroto_<object>_mask``), which Track propagates. ``numbers``: the masks
        by their numbers in the list, each a new object (obj1, obj2, ... the next free
        names); None: for each object with an include point on this frame, the mask under
        that point (the smallest there), for that object. Returns {object: AutoMask}."""
        frame, masks = self.frame, self.masks()
        t = self.clock.to_time(frame)
        picked = {}
        if numbers is not None:
            by_number = {m.index: m for m in masks}
            missing = [n for n in numbers if n not in by_number]
            if missing or not numbers:
                raise hostkit.HostError("Frame %d has automatic masks 1-%d; there is no %s." % (
                    frame, len(masks), ", ".join(str(n) for n in missing) or "mask picked"), "no_masks")
            for n in numbers:
                name = prompts.next_object_name(self.comp)
                media.put_loader(self.comp, mask_tool_name(self.comp, name, t), by_number[n].mask_path, t, t)
                picked[name] = by_number[n]
        else:
            for name, (_, prompt) in sorted(self._objects(masks=False).items()):
                clicks = [p for p, label in zip((prompt or {}).get("points", []), (prompt or {}).get("labels", []))
                          if label == 1]
                hit = hostkit.mask_at(masks, clicks[0][0], clicks[0][1]) if clicks else None
                if hit is not None:
                    safe = cliplib.safe_name(name).replace(".", "_")
                    media.put_loader(self.comp, mask_tool_name(self.comp, safe, t), hit.mask_path, t, t)
                    picked[name] = hit
            if not picked:
                raise hostkit.HostError("No object has an include point on an automatic mask on frame %d: drag a "
                                        "samroto_<object>_pos tool onto each object to keep." % frame, "no_masks")
        for name, mask in sorted(picked.items()):
            out("samroto: %s: automatic mask %d is its prompt on frame %d (samroto_%s_mask); Track uses it."
                % (name, mask.index, frame, name))
        return picked

    def close(self):
        if self.session is not None:
            self.session.close()


def mask_tool_name(comp, safe, t):
    """The mask Loader for the object on comp time ``t``: the one already there (replaced),
    else ``samroto_<object>_mask``, ``_mask2``... (one per frame with a mask prompt)."""
    n = 1
    while True:
        name = "samroto_%s_mask%s" % (safe, "" if n == 1 else n)
        tool = comp.FindTool(name)
        if tool is None or float(tool.GetInput("GlobalIn") or 0) == float(t):
            return name
        n += 1


def describe(got):
    how = "image encoder ran" if got.encoded else "cached image features"
    return "matte in %.2f s (%s; encoder runs: %d) -> %s" % (got.seconds, how, got.encoder_runs,
                                                            got.paths.get(got.object_id))
