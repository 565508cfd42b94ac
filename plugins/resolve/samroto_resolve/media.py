"""Mattes back into Resolve: the "samroto mattes" bin, import, clip mattes, a Fusion Loader.

Documented calls only (Resolve scripting README): MediaPool.GetRootFolder, AddSubFolder,
GetCurrentFolder, SetCurrentFolder, ImportMedia([{"FilePath", "StartIndex", "EndIndex"}]),
DeleteClips, GetClipMatteList, DeleteClipMattes; Folder.GetName, GetSubFolderList,
GetClipList; MediaPoolItem.GetName, SetClipProperty; Resolve.GetMediaStorage;
MediaStorage.AddClipMattesToMediaPool(MediaPoolItem, [paths]).
"""

import os

from . import clip as cliplib
from .kit import hostkit

BIN = "samroto mattes"


def ensure_bin(media_pool, names):
    """The folder root/names[0]/names[1]/..., created where missing."""
    folder = media_pool.GetRootFolder()
    for name in names:
        found = None
        for sub in folder.GetSubFolderList() or []:
            if sub.GetName() == name:
                found = sub
                break
        if found is None:
            found = media_pool.AddSubFolder(folder, name)
            if found is None:
                raise cliplib.ClipError("Resolve could not create the Media Pool bin %r." % name)
        folder = found
    return folder


def same_sequence(clip, pattern):
    """Whether a Media Pool clip is an import of the sequence ``pattern`` (its File Path,
    ``/m/a_hero.[1001-1010].exr``, names the same files), not a clip whose name merely starts
    the same (``obj1`` must not take ``obj10`` with it)."""
    found = cliplib.sequence_of(str(clip.GetClipProperty("File Path") or ""))
    return bool(found) and os.path.normpath(found[0]) == os.path.normpath(pattern)


def import_mattes(resolve, project, info, mattes, frames, attach_clip_matte=True, warnings=None):
    """Import each object's matte sequence into samroto mattes/<clip> and return
    {object name: MediaPoolItem}. ``mattes``: {object name: printf pattern}; ``frames``:
    (first, last) written. An earlier import of the same matte is replaced. What Resolve
    refused without failing the import (a read-only Start TC, a clip it would not delete)
    is appended to ``warnings``."""
    warnings = [] if warnings is None else warnings
    pool = project.GetMediaPool()
    bin_name = cliplib.safe_name(os.path.splitext(info.name)[0])
    folder = ensure_bin(pool, [BIN, bin_name])
    previous = pool.GetCurrentFolder()
    pool.SetCurrentFolder(folder)
    imported = {}
    try:
        for obj_name, pattern in sorted(mattes.items()):
            old = [c for c in (folder.GetClipList() or []) if same_sequence(c, pattern)]
            if old and not pool.DeleteClips(old):
                warnings.append("Resolve kept the earlier import of %s." % os.path.basename(pattern))
            items = pool.ImportMedia([{"FilePath": pattern, "StartIndex": int(frames[0]),
                                       "EndIndex": int(frames[1])}])
            if not items:
                raise cliplib.ClipError("Resolve could not import the matte sequence %s (frames %d-%d)."
                                        % (pattern, frames[0], frames[1]))
            item = items[0]
            tc = info.timecode_of(frames[0])
            if not item.SetClipProperty("Start TC", tc):
                warnings.append("Resolve refused the Start TC %s for %s: line it up with the clip by hand "
                                "(its first frame is source frame %d)." % (tc, item.GetName(), frames[0]))
            imported[obj_name] = item
            if attach_clip_matte:
                attach_matte(resolve, pool, info, hostkit.frame_file(pattern, frames[0]))
    finally:
        if previous is not None:
            pool.SetCurrentFolder(previous)
    return imported


def attach_matte(resolve, pool, info, first_file):
    """Attach the matte to the source clip as a clip matte (Color page: Add Matte)."""
    existing = pool.GetClipMatteList(info.media) or []
    stem = os.path.basename(first_file).rsplit(".", 2)[0]
    stale = [p for p in existing if os.path.basename(p).rsplit(".", 2)[0] == stem]
    if stale:
        pool.DeleteClipMattes(info.media, stale)
    return resolve.GetMediaStorage().AddClipMattesToMediaPool(info.media, [first_file])


def add_loaders(comp, clock, mattes, frames):
    """A Loader ``samroto_<object>_matte`` per object in the clip's comp, reading the matte
    sequence, placed so its first frame sits on the comp time of frames[0]."""
    made = {}
    for obj_name, pattern in sorted(mattes.items()):
        name = "samroto_%s_matte" % cliplib.safe_name(obj_name).replace(".", "_")
        start = clock.to_time(frames[0])
        made[obj_name] = put_loader(comp, name, hostkit.frame_file(pattern, frames[0]), start,
                                    start + frames[1] - frames[0])
    return made


def put_loader(comp, name, path, start, end):
    """The Loader ``name`` (added when missing) reading ``path`` from comp time ``start`` to
    ``end``."""
    tool = comp.FindTool(name)
    if tool is None:
        comp.Lock()  # only around AddTool: no file dialog for the new Loader
        try:
            tool = comp.AddTool("Loader", -32768, -32768)
        finally:
            comp.Unlock()
        if tool is None:
            raise cliplib.ClipError("Fusion could not add a Loader to the comp.")
        tool.SetAttrs({"TOOLS_Name": name})
    # Inputs set while the comp is locked read back but are reported not to render.
    tool.SetInput("Clip", path)
    tool.SetInput("GlobalIn", start)
    tool.SetInput("GlobalOut", end)
    return tool
