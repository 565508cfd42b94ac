"""Live Matte: the current frame's matte as soon as a prompt changes, without a Track.

One bridge session per clip stays open across clicks (``hostkit.LiveSession``), so SAM 2's
image encoder runs once per frame: the first prompt on a frame costs the encoder, later
ones (another point, a moved box, a chosen candidate) only the mask decoder. The panel
shows which (the session's image-encoder runs). A single click gives SAM 2's three
candidate masks: **1 2 3** in the panel shows another one; the chosen one becomes that
frame's mask prompt (``clip.samroto.objects[...].masks``), which Track then uses, so the
tracked matte follows the candidate chosen. The preview of a prompted frame is exactly
what Track writes there (each preview sets the frame's prompt afresh, as a new session
given the clip's prompts does).

``preview`` / ``choose`` block (the operators' EXEC, scripts, background mode);
``request_async`` is what the Place Prompts mode sends on every click and while a box is
dragged: through ``hostkit.LatestWins`` (a drag's many updates become a few requests, the
newest winning), applied by a timer (``poll``).
"""

import os
import traceback
from typing import TYPE_CHECKING

import bpy
from bpy.props import IntProperty, StringProperty

from . import clipinfo, finishing, prefs, props, results
from .kit import hostkit
from .ops_prompts import _ClipOperator, _redraw, current_source_frame, drop_masks, ensure_object, target_clip

SESSIONS: dict = {}  # clip name -> (hostkit.LiveSession, how it connects)
PREVIEWS: dict = {}  # (clip name, object id) -> the latest hostkit.FramePreview
LOOPS: dict = {}  # clip name -> hostkit.LatestWins for the Place Prompts mode
INTERVAL = 0.25  # seconds between a drag's requests (hostkit.Debouncer): about 4 a second


def live_session(context, clip):
    """The clip's LiveSession, opened again when the clip's source, range, colour or the
    bridge preferences changed."""
    path = clipinfo.absolute_path(clip, bpy.path.abspath)
    clipinfo.check_on_disk(path, clip.source)
    first = clipinfo.first_file_number(path, clip.source)
    lo, hi = clipinfo.source_range(clip.frame_start, clip.frame_offset, clip.frame_duration, first)
    folder = os.path.join(results.matte_dir(clip, clip.samroto), "live")
    how = prefs.bridge(context)
    session = hostkit.LiveSession(lambda: hostkit.connect(**how), clipinfo.frames_source(path, clip.source),
                                  lo, hi, folder, color=clipinfo.color_input(clip.colorspace_settings.name))
    session.finish = finishing.overrides(clip.samroto) or False  # the panel's Finishing, else SAM 2's own
    old = SESSIONS.get(clip.name)
    if old is not None and old[0].key() == session.key() and old[0].folder == folder and old[1] == how:
        old[0].finish = session.finish
        return old[0]
    if old is not None:
        old[0].close()
    SESSIONS[clip.name] = (session, how)
    return session


def close_all():
    for loop in LOOPS.values():
        loop.close()
    LOOPS.clear()
    for session, _ in SESSIONS.values():
        session.close()
    SESSIONS.clear()
    PREVIEWS.clear()


def frame_prompt(clip, obj, frame, masks=True):
    """The object's prompt on ``frame`` as the bridge takes it (pixels, y down), None when it
    has none. ``masks=False``: its points and box even where a mask is the frame's prompt."""
    from .tracking import prompts_document

    document = prompts_document(clip)
    if not masks:
        size = clip.size[0], clip.size[1]
        document = hostkit.prompts_document([{
            "id": obj.obj_id, "name": obj.name,
            "points": [(p.frame,) + hostkit.from_normalised(p.co[0], p.co[1], *size) + (p.positive,)
                       for p in obj.points if p.frame == frame],
            "boxes": [(b.frame,) + hostkit.from_normalised(b.co_min[0], b.co_min[1], *size)
                      + hostkit.from_normalised(b.co_max[0], b.co_max[1], *size) for b in obj.boxes if b.frame == frame],
        }])
    return hostkit.frame_prompt(document, obj.obj_id, frame)


def image_name(clip, obj):
    return "samroto live %s %s" % (clip.name, obj.name)


def show(clip, preview):
    """Put a FramePreview where the artist sees it: the preview images the overlay draws,
    the panel's counters and candidates."""
    key = (clip.name, preview.object_id)
    previous = PREVIEWS.get(key)
    if not preview.candidates and previous is not None and previous.frame == preview.frame and previous.candidates:
        obj = clip.samroto.object_by_id(preview.object_id)
        chosen = [m.candidate for m in (obj.masks if obj else []) if m.frame == preview.frame and m.candidate]
        if chosen:  # the frame's prompt is a chosen candidate: the click's candidates stay on offer
            preview = hostkit.FramePreview(preview.frame, preview.object_id, preview.paths, previous.candidates,
                                           chosen[0] - 1, preview.encoded, preview.encoder_runs, preview.correction,
                                           preview.seconds, preview.mask)
    PREVIEWS[key] = preview
    obj = clip.samroto.object_by_id(preview.object_id)
    path = preview.paths.get(preview.object_id)
    if obj is not None and path and os.path.isfile(path):
        load_image(image_name(clip, obj), path)
    clip.samroto.last_message = describe(preview)


def load_image(name, path):
    """The preview matte as an Image (Non-Color: its values are coverage), reloaded from disk."""
    image = bpy.data.images.get(name)
    if image is None:
        image = bpy.data.images.load(path, check_existing=False)
        image.name = name
    elif bpy.path.abspath(image.filepath) != path:
        image.filepath = path
    image.colorspace_settings.name = "Non-Color"
    image.reload()
    return image


def describe(preview):
    """One line for the panel: how fast, whether the image encoder ran, the candidates."""
    how = "image encoder ran" if preview.encoded else "cached image features"
    text = "Frame %d: matte in %.2f s (%s; encoder runs: %d)" % (preview.frame, preview.seconds, how,
                                                               preview.encoder_runs)
    if preview.candidates:
        text += "; candidate %d of 3" % ((preview.best or 0) + 1)
    return text


def preview(context, clip, obj, frame=None, prompt=None):
    """The frame's matte for the object's current prompt there (blocking); None when the
    object has no prompt on the frame."""
    frame = current_source_frame(context, clip) if frame is None else frame
    prompt = prompt if prompt is not None else frame_prompt(clip, obj, frame)
    if prompt is None:
        PREVIEWS.pop((clip.name, obj.obj_id), None)
        return None
    got = live_session(context, clip).prompt(frame, obj.obj_id, obj.name, prompt)
    show(clip, got)
    return PREVIEWS[(clip.name, obj.obj_id)]


def choose(context, clip, obj, index, frame=None):
    """Make SAM 2's candidate ``index`` (1..3) of the object's click on the frame its mask
    prompt there (Track uses it); returns the FramePreview."""
    frame = current_source_frame(context, clip) if frame is None else frame
    click = frame_prompt(clip, obj, frame, masks=False)
    if click is None:
        raise hostkit.HostError("No click on frame %d for %s: click once on the object, then choose." % (
            frame, obj.name), "no_prompts")
    session = live_session(context, clip)
    clicked = session.prompt(frame, obj.obj_id, obj.name, click)  # the candidates of this click
    if not clicked.candidates:
        raise hostkit.HostError("SAM 2 gives three candidates for a single click; frame %d has more prompts for %s "
                                "(Clear Frame, then click once)." % (frame, obj.name), "no_candidates")
    path = os.path.join(session.folder, "masks", "%s.%d.candidate%d.png" % (hostkit.matte_name(obj.name), frame,
                                                                            index))
    got = session.choose(frame, obj.obj_id, index - 1, path)
    drop_masks(obj, frame)
    mask = obj.masks.add()
    mask.frame, mask.filepath, mask.candidate = frame, results.blend_relative(got.mask), index
    PREVIEWS[(clip.name, obj.obj_id)] = clicked
    show(clip, hostkit.FramePreview(frame, obj.obj_id, got.paths, (), index - 1, False, got.encoder_runs, False,
                                    got.seconds, got.mask))
    return PREVIEWS[(clip.name, obj.obj_id)]


# --- the Place Prompts mode: asynchronous, newest wins -----------------------------------------

def request_async(context, clip, box=None):
    """Ask for the active object's matte on the current frame without waiting (``box``: a
    box being dragged, normalised corners, sent with the frame's points). A timer applies
    the answer (``poll``)."""
    if not clip.samroto.live_matte:
        return False
    obj = clip.samroto.active_object()
    if obj is None:
        return False
    frame = current_source_frame(context, clip)
    prompt = frame_prompt(clip, obj, frame, masks=box is None)
    if box is not None:
        (x0, y0), (x1, y1) = (hostkit.from_normalised(c[0], c[1], clip.size[0], clip.size[1]) for c in box)
        (x0, x1), (y0, y1) = sorted((x0, x1)), sorted((y0, y1))
        if x1 - x0 < 2 or y1 - y0 < 2:
            return False
        prompt = dict(prompt or {}, box=[max(0.0, x0), max(0.0, y0), min(float(clip.size[0]), x1),
                                         min(float(clip.size[1]), y1)])
    if prompt is None:
        return False
    session = live_session(context, clip)
    loop = LOOPS.get(clip.name)
    if loop is None:
        loop = LOOPS[clip.name] = hostkit.LatestWins(_work, interval=INTERVAL, name="samroto-live-matte")
    loop.push((clip.name, session, frame, obj.obj_id, obj.name, prompt))
    if not bpy.app.timers.is_registered(poll):
        bpy.app.timers.register(poll, first_interval=0.05)
    return True


def _work(value):
    _, session, frame, obj_id, name, prompt = value
    return session.prompt(frame, obj_id, name, prompt)


def poll():
    """Apply the answers that arrived (a bpy.app.timers function: seconds to the next call,
    None when nothing is left to wait for)."""
    waiting = False
    for clip_name, loop in list(LOOPS.items()):
        clip = bpy.data.movieclips.get(clip_name)
        for value, result in loop.take():
            if clip is None:
                continue
            if isinstance(result, Exception):
                clip.samroto.last_message = str(result)
            else:
                try:
                    show(clip, result)
                except Exception:  # noqa: BLE001 - a preview must never break the editor
                    traceback.print_exc()
        waiting = waiting or not loop.idle
    for window in getattr(bpy.context.window_manager, "windows", []):
        for area in window.screen.areas:
            if area.type == "CLIP_EDITOR":
                area.tag_redraw()
    return 0.05 if waiting else None


def on_finish_change(settings, context):
    """A Finishing control changed: the current frame's Live Matte again, finished with it."""
    try:
        request_async(context, settings.id_data)
    except Exception as exc:  # noqa: BLE001 - no bridge, a clip off disk: the control still changes
        settings.last_message = str(exc)


props.ON_CHANGE["finish"] = on_finish_change


# --- operators ---------------------------------------------------------------------------------

class _LiveOperator(_ClipOperator):
    if TYPE_CHECKING:  # an IntProperty of the operators that have one (see _ClipOperator)
        object_id: int

    def _object(self, clip):
        settings = clip.samroto
        if getattr(self, "object_id", 0):
            return settings.object_by_id(self.object_id)
        return settings.active_object()

    def _on_object(self, context, action):
        """Run ``action(clip, obj)`` on the operator's object; a HostError, or an action that
        returns False, is reported as the operator's failure."""
        clip = target_clip(context)
        obj = self._object(clip)
        if obj is None:
            return self._fail(clip, hostkit.HostError("Add an object and click on it first."))
        try:
            if action(clip, obj) is False:
                return self._fail(clip, hostkit.HostError(
                    "%s has no prompt on this frame: click on it first." % obj.name))
        except hostkit.HostError as exc:
            return self._fail(clip, exc)
        self.report({"INFO"}, clip.samroto.last_message)
        _redraw(context)
        return {"FINISHED"}


class SAMROTO_OT_show_matte(_LiveOperator, bpy.types.Operator):
    bl_idname = "samroto.show_matte"
    bl_label = "Show Matte"
    bl_description = ("The current frame's matte for the active object's prompts there, at once "
                      "(no Track): drawn over the clip")

    object_id: IntProperty(name="Object", default=0, description="samroto object id (0: the active object)")

    def execute(self, context):
        return self._on_object(context, lambda clip, obj: preview(context, clip, obj) is not None)


class SAMROTO_OT_choose_candidate(_LiveOperator, bpy.types.Operator):
    bl_idname = "samroto.choose_candidate"
    bl_label = "Choose Candidate"
    bl_description = ("Use another of SAM 2's three masks for this click: it becomes the frame's mask "
                      "prompt, which Track uses")

    index: IntProperty(name="Candidate", default=1, min=1, max=3)
    object_id: IntProperty(name="Object", default=0)

    def execute(self, context):
        return self._on_object(context, lambda clip, obj: choose(context, clip, obj, self.index))


class SAMROTO_OT_mask_prompt(_LiveOperator, bpy.types.Operator):
    bl_idname = "samroto.mask_prompt"
    bl_label = "Mask from Image"
    bl_description = ("Use an image (a matte, a roto render: the clip's size; inside = alpha, or any "
                      "channel above zero) as the active object's prompt on the current frame")
    bl_options = {"REGISTER", "UNDO"}

    image: StringProperty(name="Image", description="An Image datablock (a file on disk, or saved beside the mattes)")
    filepath: StringProperty(name="File", subtype="FILE_PATH", description="Or a mask image file")
    filter_image: bpy.props.BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"})
    filter_folder: bpy.props.BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"})

    def invoke(self, context, event):
        if self.image or self.filepath:
            return self.execute(context)
        context.window_manager.fileselect_add(self)  # pick the mask image's file
        return {"RUNNING_MODAL"}

    def execute(self, context):
        clip = target_clip(context)
        obj = ensure_object(clip.samroto)
        frame = current_source_frame(context, clip)
        try:
            path = self._mask_file(context, clip, obj, frame)
        except hostkit.HostError as exc:
            return self._fail(clip, exc)
        drop_masks(obj, frame)
        mask = obj.masks.add()
        mask.frame, mask.filepath, mask.candidate = frame, results.blend_relative(path), 0
        if clip.samroto.live_matte:
            try:
                preview(context, clip, obj, frame)
            except hostkit.HostError as exc:
                return self._fail(clip, exc)
        _redraw(context)
        return {"FINISHED"}

    def _mask_file(self, context, clip, obj, frame):
        if self.filepath:
            path = os.path.normpath(bpy.path.abspath(self.filepath))
            if not os.path.isfile(path):
                raise hostkit.HostError("The mask file %s does not exist." % path)
            return path
        image = bpy.data.images.get(self.image)
        if image is None:
            raise hostkit.HostError("Choose an image (or a file) to use as the mask.")
        if tuple(image.size) != tuple(clip.size):
            raise hostkit.HostError("The image %s is %dx%d; a mask prompt must be the clip's size (%dx%d)." % (
                image.name, image.size[0], image.size[1], clip.size[0], clip.size[1]))
        source = bpy.path.abspath(image.filepath) if image.source == "FILE" and not image.packed_file else ""
        if source and os.path.isfile(source) and not image.is_dirty:
            return os.path.normpath(source)
        path = os.path.join(results.matte_dir(clip, clip.samroto), "live", "masks",
                            "%s.%d.image.png" % (hostkit.matte_name(obj.name), frame))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        # the pixels as they are now (a generated or painted image has no file; Image.copy()
        # of a generated image regenerates it): into a scratch image saved as PNG
        pixels = [0.0] * (image.size[0] * image.size[1] * 4)
        if image.channels == 4:
            image.pixels.foreach_get(pixels)
        else:  # grey or RGB: the file says inside by any channel above zero
            flat = list(image.pixels)
            n = image.channels
            for i in range(image.size[0] * image.size[1]):
                value = max(flat[i * n:(i + 1) * n])
                pixels[i * 4:i * 4 + 4] = (value, value, value, value)
        scratch = bpy.data.images.new("samroto mask", image.size[0], image.size[1], alpha=True)
        try:
            # stub gap (fake-bpy-module 4.2-5.0): Image.pixels typed float, not the array it is
            scratch.pixels.foreach_set(pixels)  # type: ignore[attr-defined,unused-ignore]
            scratch.filepath_raw = path
            scratch.file_format = "PNG"
            scratch.save()
        finally:
            bpy.data.images.remove(scratch)
        return path


CLASSES = [SAMROTO_OT_show_matte, SAMROTO_OT_choose_candidate, SAMROTO_OT_mask_prompt]
