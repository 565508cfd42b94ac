"""Build a fake Resolve project around a real media file (tests only)."""

from . import DaVinciResolveScript
from . import resolve as fr


def build(media_path, frames=40, left=5, duration=20, width=256, height=128, fps="24",
          start_tc="01:00:00:00", name="shot010.mp4", speed=1.0, has_source_frames=True, read_only=(),
          first=0, timeline_size=(1920, 1080)):
    """One timeline with one item using source frames left..left+duration-1 of ``media_path``
    (``first``: the number of its first frame, e.g. 1001 for a sequence; ``timeline_size``:
    the timeline's resolution, which need not be the clip's)."""
    media = fr.MediaPoolItem({"Clip Name": name, "File Path": str(media_path), "FPS": fps,
                              "Start TC": start_tc, "Start": str(first), "End": str(first + frames - 1),
                              "Frames": str(frames), "Resolution": "%dx%d" % (width, height),
                              "Input Color Space": "Rec.709 Gamma 2.4"}, read_only=read_only)
    item = fr.TimelineItem(name, media, left, duration, frames - left - duration, speed=speed,
                           has_source_frames=has_source_frames)
    timeline = fr.Timeline("Timeline 1", [item], settings={"timelineResolutionWidth": str(timeline_size[0]),
                                                            "timelineResolutionHeight": str(timeline_size[1])})
    project = fr.Project("samroto test", timeline)
    project.GetMediaPool()._read_only = set(read_only)
    resolve = fr.Resolve(project)
    DaVinciResolveScript.install(resolve)
    return resolve, item
