"""Track: the clip's prompts go to the bridge, mattes come back while Blender stays usable.

The host kit's TrackingJob talks to the bridge in a worker thread (no ``bpy`` there); the
main thread polls its events in ``TrackJob.step`` (called from the modal operator's timer
events) to update progress, load mattes as they arrive, and finish. Esc cancels.

Blender's timers do not fire in background mode (``blender -b``, the ``bpy`` module), so
scripts use ``bpy.ops.samroto.track()`` (EXEC: blocks until done) or call
``handle_event(context, "TIMER")`` themselves, which is exactly what the modal operator does.
"""

import os
import time
import traceback
from typing import TYPE_CHECKING, Any

import bpy

from . import clipinfo, finishing, prefs, results
from .kit import hostkit
from .ops_prompts import _ClipOperator, current_source_frame, target_clip

ACTIVE: dict = {}  # clip name -> the TrackJob running for it


def prompts_document(clip):
    """The clip's prompts as samroto's prompts JSON (pixels, y down)."""
    size = clip.size[0], clip.size[1]
    return hostkit.prompts_document([{
        "id": obj.obj_id, "name": obj.name,
        "points": [(p.frame,) + hostkit.from_normalised(p.co[0], p.co[1], *size) + (p.positive,)
                   for p in obj.points],
        "boxes": [(b.frame,) + hostkit.from_normalised(b.co_min[0], b.co_min[1], *size)
                  + hostkit.from_normalised(b.co_max[0], b.co_max[1], *size) for b in obj.boxes],
        # a chosen candidate or an image: the frame's whole prompt (hostkit.prompts_document)
        "masks": [(m.frame, os.path.normpath(bpy.path.abspath(m.filepath))) for m in obj.masks],
    } for obj in clip.samroto.objects])


def build_request(context, clip, direction=None):
    """Everything the worker needs, as plain data (the thread must not touch bpy).

    The Range setting and the current frame say which frames a Track covers
    (``hostkit.shot_frames``: forward from the current frame, backward to it, both the whole
    range); those frames are the shot the bridge opens, with the prompts on them, so the
    mattes are ``samroto track --range A-B --direction D`` 's on the same clip."""
    settings = clip.samroto
    if not settings.objects or not any(len(o.points) or len(o.boxes) or len(o.masks) for o in settings.objects):
        raise clipinfo.ClipError(
            "No prompts: press Place Prompts in the Movie Clip Editor's samroto panel and click "
            "on the object (Alt-click excludes, drag for a box), then Track.")
    path = clipinfo.absolute_path(clip, bpy.path.abspath)
    clipinfo.check_on_disk(path, clip.source)
    first = clipinfo.first_file_number(path, clip.source)
    lo, hi = clipinfo.source_range(clip.frame_start, clip.frame_offset, clip.frame_duration, first)
    if settings.frame_range == "SCENE":
        s_lo = clipinfo.source_frame(context.scene.frame_start, clip.frame_start, clip.frame_offset, first)
        s_hi = clipinfo.source_frame(context.scene.frame_end, clip.frame_start, clip.frame_offset, first)
        lo, hi = max(lo, s_lo), min(hi, s_hi)
        if lo > hi:
            raise clipinfo.ClipError("The scene's frame range does not overlap the clip.")
    direction = (direction or settings.direction).lower()
    lo, hi = hostkit.shot_frames(direction, lo, hi, current_source_frame(context, clip))
    prompts = hostkit.prompts_within(prompts_document(clip), lo, hi, direction)
    out_dir = results.matte_dir(clip, settings)
    pattern = os.path.join(out_dir, "{name}.####.exr")
    return {
        "source": clipinfo.frames_source(path, clip.source),
        "color": clipinfo.color_input(clip.colorspace_settings.name),
        "range": [lo, hi],
        "direction": direction,
        "prompts": prompts,
        "pattern": pattern,
        "outputs": {o["id"]: hostkit.object_pattern(pattern, o["name"]) for o in prompts["objects"]},
        "size": [clip.size[0], clip.size[1]],
        "bridge": prefs.bridge(context),
        "finish": finishing.overrides(settings),  # the panel's Finishing, or None: the bridge's settings
    }


def shot(request):
    lo, hi = request["range"]
    mattes = hostkit.file_mattes(request["pattern"])
    if request.get("finish"):
        mattes["finish"] = request["finish"]
    return hostkit.Shot(request["source"], request["prompts"], lo, hi, mattes=mattes,
                        direction=request["direction"], color=request["color"])


class TrackJob:
    def __init__(self, clip, request):
        self.clip_name = clip.name
        self.request = request
        self.track = hostkit.TrackingJob(shot(request), lambda: hostkit.connect(**request["bridge"]))
        self.done_frames = self.track.frames
        self.state = "RUNNING"  # RUNNING, FINISHED, CANCELLED, ERROR
        self.wired = False
        self.message = ""
        self.scores = {}  # object id -> {frame: SAM 2's object score}, not yet kept on the object

    def start(self):
        os.makedirs(os.path.dirname(next(iter(self.request["outputs"].values()))), exist_ok=True)
        self.track.start()
        return self

    def cancel(self):
        self.track.cancel()

    # -- main thread --------------------------------------------------------------------------
    def step(self, context):
        """Apply what arrived from the worker; returns the job state. Whatever goes wrong on
        Blender's side ends the job (state ERROR, the worker cancelled, the clip free to track
        again) instead of leaving it active."""
        try:
            return self._step(context)
        except Exception as exc:  # noqa: BLE001 - a bug here must not leave the clip "being tracked"
            traceback.print_exc()
            self._abort(context, "Tracking failed in Blender: %s: %s (the mattes written so far are kept)"
                        % (type(exc).__name__, exc))
            return self.state

    def _abort(self, context, message):
        self.track.cancel()
        self.state, self.message = "ERROR", message
        ACTIVE.pop(self.clip_name, None)
        _status(context, None, None)
        clip = bpy.data.movieclips.get(self.clip_name)
        if clip is not None:
            clip.samroto.last_message = message

    def _step(self, context):
        clip = bpy.data.movieclips.get(self.clip_name)
        arrived = False
        for event in self.track.poll():
            if isinstance(event, hostkit.Matte):
                arrived = True
                for obj_id, score in event.scores().items():
                    self.scores.setdefault(obj_id, {})[event.frame] = score
            elif isinstance(event, hostkit.Done):
                self._finish(context, clip, "FINISHED",
                             "Tracked %d frames of %s" % (len(self.done_frames), self.clip_name))
            elif isinstance(event, hostkit.Cancelled):
                self._finish(context, clip, "CANCELLED",
                             "Tracking cancelled after %d frames (those mattes are kept)" % len(self.done_frames))
            elif isinstance(event, hostkit.Error):
                self._finish(context, clip, "ERROR", event.message)
        if self.state == "RUNNING":
            if arrived and clip is not None:
                self._show_mattes(clip)
                if not self.wired:  # the comp shows mattes as they arrive
                    self.wired = self._wire(context, clip)
            self._progress(context)
        return self.state

    def _show_mattes(self, clip):
        frames = sorted(self.done_frames)
        for obj_id, new in self.scores.items():  # for Review's Previous/Next Lost
            obj = clip.samroto.object_by_id(obj_id)
            if obj is not None:
                results.keep_scores(obj, new)
        self.scores = {}
        for obj in clip.samroto.objects:
            pattern = self.track.patterns.get(obj.obj_id)  # where the bridge really wrote them
            if pattern and frames:
                obj.matte_pattern = results.blend_relative(pattern)
                if os.path.exists(results.matte_file(pattern, frames[0])):
                    results.load_matte_image(clip, obj, frames[0])

    def _progress(self, context):
        done = len(self.done_frames)
        text = "samroto: tracking %s, %d/%d frames (Esc to cancel)" % (self.clip_name, done, self.track.total)
        _status(context, text, 100.0 * self.track.fraction)

    def _finish(self, context, clip, state, message):
        if self.state != "RUNNING":
            return
        self.state, self.message = state, message
        ACTIVE.pop(self.clip_name, None)
        _status(context, None, None)
        if clip is None:
            return
        clip.samroto.last_message = message
        if self.done_frames:
            self._show_mattes(clip)
            self._wire(context, clip)

    def _wire(self, context, clip):
        tracked = [o for o in clip.samroto.objects if o.obj_id in self.request["outputs"]]
        try:
            results.build_compositor(context.scene, clip, tracked)
            return True
        except hostkit.HostError as exc:
            clip.samroto.last_message = "%s (compositor: %s)" % (self.message or "Tracking", exc)
        except Exception as exc:  # noqa: BLE001 - the mattes are on disk; Setup Compositor retries
            traceback.print_exc()
            clip.samroto.last_message = "%s (the compositor could not be set up: %s: %s)" % (
                self.message or "Tracking", type(exc).__name__, exc)
            return True  # not retried on every frame; the end of the job tries once more
        return False


def _status(context, text, percent):
    """Progress in the status bar and the Clip Editor's header; None clears them."""
    if text is not None:
        text = "%s  [%s]" % (text, _bar(percent))
    try:
        if context.workspace is not None:
            context.workspace.status_text_set(text)
        for area in (context.screen.areas if context.screen else []):
            if area.type == "CLIP_EDITOR":
                area.header_text_set(text)
    except (AttributeError, RuntimeError):
        pass  # no UI (background): the state is still in the job and on the clip


def _bar(percent, width=20):
    filled = int(round(width * max(0.0, min(100.0, percent)) / 100.0))
    return "#" * filled + "-" * (width - filled)


def start_job(context, clip, direction=None):
    if clip.name in ACTIVE:
        raise clipinfo.ClipError("%s is already being tracked (Esc cancels it)." % clip.name)
    job = TrackJob(clip, build_request(context, clip, direction))
    ACTIVE[clip.name] = job
    try:
        return job.start()
    except OSError as exc:
        ACTIVE.pop(clip.name, None)
        raise clipinfo.ClipError("Cannot create the matte folder: %s" % exc)


def handle_event(context, event_type, clip_name=None):
    """The modal operator's event handler: 'TIMER' advances, 'ESC' cancels.

    Returns the job state (RUNNING, FINISHED, CANCELLED, ERROR), or None with no job.
    """
    job = ACTIVE.get(clip_name) if clip_name else next(iter(ACTIVE.values()), None)
    if job is None:
        return None
    if event_type == "ESC":
        job.cancel()
    return job.step(context)


class _JobOperator(_ClipOperator):
    """A mix-in of operators that run a job on the clip (``_start(context)``: the started job,
    with ``step(context)`` -> RUNNING/FINISHED/CANCELLED/ERROR and ``cancel()``, or None after
    reporting why not). EXEC (scripts, background mode) blocks until the job ends; INVOKE
    steps it on a window timer, so Blender stays usable, and Esc cancels it."""
    if TYPE_CHECKING:  # what the operator provides (see _ClipOperator)
        bl_label: str

        def _start(self, context) -> Any: ...

    def execute(self, context):
        job = self._start(context)
        if job is None:
            return {"CANCELLED"}
        while job.step(context) == "RUNNING":
            time.sleep(0.05)
        return self._end(context, job)

    def invoke(self, context, event):
        job = self._start(context)
        if job is None:
            return {"CANCELLED"}
        self.job = job
        self._timer = context.window_manager.event_timer_add(0.1, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type == "ESC" and event.value == "PRESS":
            self.job.cancel()
        elif event.type != "TIMER":
            return {"PASS_THROUGH"}
        if self.job.step(context) == "RUNNING":
            return {"RUNNING_MODAL"}
        context.window_manager.event_timer_remove(self._timer)
        return self._end(context, self.job)

    def _end(self, context, job):
        for area in context.screen.areas if context.screen else []:
            area.tag_redraw()  # the clip, and the compositor Track wired
        clip = bpy.data.movieclips.get(job.clip_name)
        # the clip's message: the job's, and what went wrong after it (e.g. the compositor)
        message = (clip.samroto.last_message if clip is not None else "") or job.message
        self.report({"ERROR"} if job.state == "ERROR" else {"INFO"}, message or "%s ended" % self.bl_label)
        return {"FINISHED"} if job.state == "FINISHED" else {"CANCELLED"}


class SAMROTO_OT_track(_JobOperator, bpy.types.Operator):
    bl_idname = "samroto.track"
    bl_label = "Track"
    bl_description = "Track every object's matte through the clip from the current frame (Esc cancels)"

    direction: bpy.props.EnumProperty(
        name="Direction",
        items=[("DEFAULT", "Panel Setting", ""), ("BOTH", "Both", ""),
               ("FORWARD", "Forward", ""), ("BACKWARD", "Backward", "")],
        default="DEFAULT")

    def _start(self, context):
        clip = target_clip(context)
        try:
            return start_job(context, clip, None if self.direction == "DEFAULT" else self.direction)
        except hostkit.HostError as exc:
            self._fail(clip, exc)
            return None


class SAMROTO_OT_cancel(bpy.types.Operator):
    bl_idname = "samroto.cancel"
    bl_label = "Cancel Tracking"
    bl_description = "Stop tracking (finished mattes are kept)"

    def execute(self, context):
        for job in list(ACTIVE.values()):
            job.cancel()
        return {"FINISHED"}


CLASSES = [SAMROTO_OT_track, SAMROTO_OT_cancel]
