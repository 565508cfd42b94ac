"""FAKE Resolve objects (tests only). Each method cites its README section and keeps the
documented return shape. Lists are Python lists, dicts are dicts, as Resolve's Python API
returns them."""

import os
import re

from . import fusion as fu


class Resolve(object):
    """README "Resolve"."""

    def __init__(self, project, fusion=None):
        self._pm = ProjectManager(project)
        self._storage = MediaStorage()
        self._fusion = fusion or fu.Fusion()

    def Fusion(self):  # --> Fusion
        return self._fusion

    def GetProjectManager(self):  # --> ProjectManager
        return self._pm

    def GetMediaStorage(self):  # --> MediaStorage
        return self._storage


class ProjectManager(object):
    """README "ProjectManager"."""

    def __init__(self, project):
        self._project = project

    def GetCurrentProject(self):  # --> Project
        return self._project


class Project(object):
    """README "Project"."""

    def __init__(self, name, timeline):
        self._name, self._timeline, self._pool = name, timeline, MediaPool()

    def GetName(self):
        return self._name

    def GetMediaPool(self):  # --> MediaPool
        return self._pool

    def GetCurrentTimeline(self):  # --> Timeline
        return self._timeline


class MediaStorage(object):
    """README "MediaStorage"."""

    def __init__(self):
        self.clip_mattes = []  # recorded (MediaPoolItem, [paths])

    def AddClipMattesToMediaPool(self, item, paths, stereoEye=None):  # --> Bool
        if not isinstance(item, MediaPoolItem) or not isinstance(paths, list):
            return False
        if not all(os.path.isfile(p) for p in paths):
            return False
        self.clip_mattes.append((item, list(paths)))
        item._mattes.extend(paths)
        return True


class Folder(object):
    """README "Folder"."""

    def __init__(self, name):
        self._name, self._clips, self._subs = name, [], []

    def GetName(self):  # --> string
        return self._name

    def GetClipList(self):  # --> [clips...]
        return list(self._clips)

    def GetSubFolderList(self):  # --> [folders...]
        return list(self._subs)


class MediaPool(object):
    """README "MediaPool"."""

    def __init__(self, read_only=()):
        self._read_only = set(read_only)  # properties the clips it imports refuse to change
        self._root = Folder("Master")
        self._current = self._root
        self.imports = []  # recorded (folder name path, clipInfo list)

    def GetRootFolder(self):  # --> Folder
        return self._root

    def AddSubFolder(self, folder, name):  # --> Folder
        sub = Folder(name)
        folder._subs.append(sub)
        return sub

    def GetCurrentFolder(self):  # --> Folder
        return self._current

    def SetCurrentFolder(self, folder):  # --> Bool
        if not isinstance(folder, Folder):
            return False
        self._current = folder
        return True

    def ImportMedia(self, items):  # --> [MediaPoolItems]
        """ImportMedia([{clipInfo}]): "FilePath" (printf pattern), "StartIndex", "EndIndex";
        one MediaPoolItem per clipInfo, named like "file_[001-100].dpx". Missing files: none."""
        made = []
        for info in items:
            pattern, a, b = info["FilePath"], int(info["StartIndex"]), int(info["EndIndex"])
            if not all(os.path.isfile(pattern % n) for n in range(a, b + 1)):
                continue
            m = re.search(r"%0?(\d*)d", pattern)
            width = int(m.group(1) or 0)
            name = os.path.basename(pattern[:m.start()] + "[%0*d-%0*d]" % (width, a, width, b) + pattern[m.end():])
            item = MediaPoolItem({"Clip Name": name, "File Path": os.path.join(os.path.dirname(pattern), name),
                                  "Start": str(a), "End": str(b), "Frames": str(b - a + 1),
                                  "Start TC": "00:00:00:00"}, read_only=self._read_only)
            self._current._clips.append(item)
            made.append(item)
        self.imports.append((self._current.GetName(), list(items)))
        return made

    def DeleteClips(self, clips):  # --> Bool
        for folder in _walk(self._root):
            folder._clips = [c for c in folder._clips if c not in clips]
        return True

    def GetClipMatteList(self, item):  # --> [paths]
        return list(item._mattes)

    def DeleteClipMattes(self, item, paths):  # --> Bool
        item._mattes = [p for p in item._mattes if p not in paths]
        return True


def _walk(folder):
    yield folder
    for sub in folder._subs:
        for f in _walk(sub):
            yield f


class MediaPoolItem(object):
    """README "MediaPoolItem"; properties as in "Looking up clip properties" (all strings)."""

    def GetName(self):  # --> string
        return self._props.get("Clip Name", "")

    def GetClipProperty(self, propertyName=None):  # --> string|dict
        if propertyName is None:
            return dict(self._props)
        return self._props.get(propertyName, "")

    # README "Looking up Project and Clip properties": "Some properties may be read only -
    # these include intrinsic clip properties ..."; "please check the return value". Which
    # keys a given clip refuses varies (tests pass ``read_only``); these never change.
    READ_ONLY = {"File Path", "Clip Name", "Resolution", "Frames", "Start", "End", "Date Created", "Type"}

    def __init__(self, properties, read_only=()):
        self._props = dict(properties)
        self._props.setdefault("Proxy", "None")
        self._props.setdefault("Proxy Media Path", "")
        self._proxy_resolution = "Half"  # tests may set the size their proxy has
        self._mattes = []
        self._read_only = set(self.READ_ONLY) | set(read_only)

    def SetClipProperty(self, propertyName, propertyValue):  # --> Bool
        if not isinstance(propertyValue, str) or propertyName in self._read_only:
            return False
        self._props[propertyName] = propertyValue
        return True

    def LinkProxyMedia(self, proxyMediaFilePath):  # --> Bool
        """README: "Links proxy media located at path specified by arg 'proxyMediaFilePath'
        with the current clip. 'proxyMediaFilePath' should be absolute clip path." The clip's
        own "File Path" stays the original's; the proxy shows as "Proxy Media Path" (Clip
        Attributes), "Proxy" its resolution as Resolve lists it."""
        if not os.path.isabs(str(proxyMediaFilePath)) or not os.path.isfile(proxyMediaFilePath):
            return False
        self._props["Proxy Media Path"] = str(proxyMediaFilePath)
        self._props["Proxy"] = self._proxy_resolution
        return True

    def UnlinkProxyMedia(self):  # --> Bool
        if not self._props.get("Proxy Media Path"):
            return False
        self._props["Proxy Media Path"], self._props["Proxy"] = "", "None"
        return True


class Timeline(object):
    """README "Timeline"."""

    def __init__(self, name, items, settings=None):
        self._name, self._items = name, list(items)
        self.playhead = 0
        self._settings = {"timelineResolutionWidth": "1920", "timelineResolutionHeight": "1080",
                          "timelineFrameRate": "24"}
        self._settings.update(settings or {})

    def GetName(self):
        return self._name

    # README: "GetCurrentTimecode() --> string ... while on Cut, Edit, Color, Fairlight and
    # Deliver pages"; "SetCurrentTimecode(timecode) --> Bool ... for Cut, Edit, Color,
    # Fairlight and Deliver pages". ``page``: the page Resolve shows (tests set "fusion").
    page = "color"
    timecode = "01:00:00:00"

    def GetCurrentTimecode(self):  # --> string
        return self.timecode if self.page != "fusion" else ""

    def SetCurrentTimecode(self, timecode):  # --> Bool
        if self.page == "fusion" or not re.match(r"^\d\d:\d\d:\d\d[:;]\d\d$", str(timecode)):
            return False
        self.timecode = str(timecode)
        return True

    def GetSetting(self, settingName=None):  # --> string (all settings as a dict without a name)
        if settingName is None:
            return dict(self._settings)
        return self._settings.get(settingName, "")

    def GetCurrentVideoItem(self):  # --> item
        return self._items[self.playhead] if self._items else None


class TimelineItem(object):
    """README "TimelineItem". ``left_offset``/``right_offset``: the source frames outside the
    used range; ``duration``: the source frames used; ``speed``: a retime (2.0 = 200 %).

    What the calls return follows the README and, where it is silent, what people who ran
    Resolve measured:
    - GetDuration: timeline frames (the source frames used / speed);
    - GetLeftOffset/GetRightOffset: "the maximum extension by frame" in *timeline* frames:
      on a retimed clip the source offset divided by the speed (measured: "GetLeftOffset()/
      GetDuration() count in timeline frames, also for 50p clips in a 25p timeline (source
      frame = 2 x offset)", a Resolve 21.1 user; issue 17, defect 3);
    - GetSourceStartFrame/GetSourceEndFrame: the source frame offsets played, end inclusive
      (README: "the start/end frame position of the media pool clip in the timeline clip";
      inclusive as measured by users). ``has_source_frames=False`` models a Resolve without
      them (before 18.5).
    The ``subframe_precision`` argument (Resolve 19+) is accepted, defaulting to False."""

    def __init__(self, name, media, left_offset, duration, right_offset, start=86400, speed=1.0,
                 has_source_frames=True):
        self._name, self._media = name, media
        self._left, self._duration, self._right, self._start = left_offset, duration, right_offset, start
        self._speed = float(speed)
        self._comps = []
        if not has_source_frames:
            self.GetSourceStartFrame = None  # what a missing call looks like through fusionscript
            self.GetSourceEndFrame = None

    def _timeline(self, frames, subframe_precision):
        value = frames / self._speed
        return value if subframe_precision else int(value)

    def GetName(self):  # --> string
        return self._name

    def GetDuration(self, subframe_precision=False):  # --> int (timeline frames)
        return self._timeline(self._duration, subframe_precision)

    def GetStart(self, subframe_precision=False):  # --> int
        return self._start

    def GetLeftOffset(self, subframe_precision=False):  # --> int ("maximum extension by frame ... from left side")
        return self._timeline(self._left, subframe_precision)

    def GetRightOffset(self, subframe_precision=False):  # --> int
        return self._timeline(self._right, subframe_precision)

    def GetSourceStartFrame(self):  # --> int
        return self._left

    def GetSourceEndFrame(self):  # --> int (inclusive)
        return self._left + self._duration - 1

    def GetMediaPoolItem(self):  # --> MediaPoolItem
        return self._media

    def GetFusionCompCount(self):  # --> int
        return len(self._comps)

    def GetFusionCompByIndex(self, compIndex):  # --> fusionComp, 1 <= compIndex <= count
        if 1 <= compIndex <= len(self._comps):
            return self._comps[compIndex - 1]
        return None

    def AddFusionComp(self):  # --> fusionComp
        """The Fusion page's ranges for a timeline clip: global range = the whole source
        (from 0), render range = the used part (Resolve manual, Time Ruler in the Fusion page)."""
        total = self._left + self._duration + self._right
        comp = fu.Composition(global_range=(0, total - 1),
                              render_range=(self._left, self._left + self._duration - 1))
        self._comps.append(comp)
        return comp
