"""From the clip under the playhead to imported mattes: the steps both the window and the
no-window scripts run (on Resolve's script thread)."""

import json
import os

from . import clip as cliplib
from . import finishing, media, prompts
from .kit import HOW_TO_SET, hostkit

DEFAULTS = {"handles": 12, "matte_root": "", "attach_clip_matte": True, "add_loader": False,
            "model": None, "python": "", "config_dir": None, "format": "exr"}


def installed_settings():
    """What `samroto install resolve` recorded next to this package (installed.json)."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "installed.json")
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {}


class Plan(object):
    """Everything needed to track one clip, read from Resolve on the script's thread."""

    def __init__(self, resolve, direction="forward", **settings):
        installed = installed_settings()
        given = {k: v for k, v in settings.items() if v is not None}
        self.settings = dict(DEFAULTS, **installed)
        self.settings.update(given)
        self.settings["python"] = hostkit.samroto_python(given.get("python"), installed.get("python"))
        if direction not in ("forward", "backward", "both"):
            raise ValueError("direction must be forward, backward or both, not %r" % direction)
        self.resolve = resolve
        self.project, self.timeline, self.item = cliplib.current_item(resolve)
        self.clip, self.comp, self.clock = prompted_clip(self.item)
        self.prompts, self.prompt_frames = prompts.read_prompts(self.comp, self.clip)
        self.finish_values = finishing.read(self.comp)  # the clip's Finish values; None: the bridge's
        self.range = self.clip.track_range(self.settings["handles"], self.prompt_frames)
        self.pattern = self.clip.matte_pattern(self.settings["matte_root"] or None,
                                               ext=self.settings["format"])
        self.direction = direction

    def summary(self):
        lines = ["Clip: %s (%dx%d, %s)" % (self.clip.name, self.clip.width, self.clip.height, self.clip.source),
                 "Frames to track: %d-%d (used %d-%d + handles)" % (self.range + self.clip.used_range)]
        if self.clip.proxy:
            lines.append("Proxy linked (%s): samroto tracks the original at %dx%d" % (
                self.clip.proxy, self.clip.width, self.clip.height))
        for obj in self.prompts["objects"]:
            lines.append("Object %s: prompts on frames %s" % (
                obj["name"], ", ".join(str(p["frame"]) for p in obj["prompts"])))
        lines.append(finishing.describe(self.finish_values))
        lines.append("Mattes: %s" % self.pattern)
        return "\n".join(lines)

    def shot(self):
        """What the bridge tracks: the clip's frames over the range, from the bridge's start."""
        return hostkit.Shot(self.clip.source, self.prompts, self.range[0], self.range[1],
                            mattes=self.mattes(),
                            direction=self.direction, color=self.clip.color, model=self.settings["model"])

    def mattes(self):
        """The bridge's output for the track: the matte files, finished with the clip's Finish
        values where it has some."""
        out = hostkit.file_mattes(self.pattern, self.settings["format"])
        if self.finish_values:
            out["finish"] = dict(self.finish_values)
        return out

    def job(self, connect=None):
        """The host kit's TrackingJob for this plan (not started). ``connect``: how to reach
        the bridge (default: the running one, else one started with samroto's Python)."""
        return hostkit.TrackingJob(self.shot(), connect or (lambda: hostkit.connect(
            python=self.settings["python"], config_dir=self.settings["config_dir"], name="samroto-resolve",
            how_to_set=HOW_TO_SET)))

    def finish(self, job):
        """Import what the finished (or cancelled) ``job`` wrote."""
        if not job.frames:
            return {}
        span = (min(job.frames), max(job.frames))
        names = {o["id"]: o["name"] for o in self.prompts["objects"]}
        patterns = {names[i]: p for i, p in job.patterns.items() if i in names}
        self.warnings = []  # type: list
        imported = media.import_mattes(self.resolve, self.project, self.clip, patterns, span,
                                       attach_clip_matte=self.settings["attach_clip_matte"],
                                       warnings=self.warnings)
        if self.settings["add_loader"]:
            media.add_loaders(self.comp, self.clock, patterns, span)
        return imported


def add_prompts(resolve):
    """Create prompt tools for a new object in the clip's comp; returns (clip name, object)."""
    _, _, item = cliplib.current_item(resolve)
    info = cliplib.ClipInfo(item)
    comp = prompts.clip_comp(item, create=True)
    name, _ = prompts.add_prompt_tools(comp, info)
    return info.name, name


def prompted_clip(item):
    """(ClipInfo, Fusion comp, CompTime) of a timeline item whose comp holds the prompts;
    PromptReadError, saying what to run, when it has no comp yet."""
    clip = cliplib.ClipInfo(item)
    comp = prompts.clip_comp(item, create=False)
    if comp is None:
        raise prompts.PromptReadError(
            "%s has no Fusion composition yet: run Workspace > Scripts > samroto > Add Prompts "
            "first." % clip.name)
    return clip, comp, prompts.CompTime(comp, clip)
