"""The no-window scripts (free edition of Resolve 19.1+, where scripts cannot open windows):
progress goes to Workspace > Console; the Cancel Tracking script stops a running job."""

import os
import tempfile
import time

from . import workflow
from .kit import hostkit


def cancel_flag():
    return os.path.join(tempfile.gettempdir(), "samroto-resolve-cancel")


def _clear_cancel():
    try:
        os.remove(cancel_flag())
    except OSError:
        pass


def request_cancel():
    with open(cancel_flag(), "w") as fh:
        fh.write(str(time.time()))
    print("samroto: cancel requested; the running track stops within a frame.")


def run_plan(plan, out=print, poll=0.2, connect=None):
    """Track ``plan`` to the end (blocking), printing its summary and progress every 10 %;
    the Cancel Tracking script's flag file stops it. Returns the finished job."""
    out("samroto: " + plan.summary().replace("\n", "\nsamroto: "))
    job = plan.job(connect).start()
    last = -1
    while True:
        job.poll()
        if not job.running:
            break
        if os.path.exists(cancel_flag()):
            job.cancel()
        pct = int(100 * job.fraction)
        if pct // 10 != last // 10:
            out("samroto: %d%% (%d/%d frames)" % (pct, job.done, job.total))
            last = pct
        time.sleep(poll)
    job.wait()
    return job


def track(resolve, direction, out=print, poll=0.2, connect=None, **settings):
    """Track the clip under the playhead; blocks until done, printing progress. ``connect``:
    how to reach the bridge (default: the running one, else start it)."""
    _clear_cancel()
    plan = workflow.Plan(resolve, direction, **settings)
    job = run_plan(plan, out, poll, connect)
    out("samroto: " + job.summary())
    imported = {}
    if job.state in (hostkit.DONE, hostkit.CANCELLED) and job.frames:
        imported = plan.finish(job)
        out("samroto: imported %d matte(s) into the Media Pool bin 'samroto mattes'." % len(imported))
        for warning in getattr(plan, "warnings", []):
            out("samroto: " + warning)
    _clear_cancel()
    return job, plan, imported


def add_prompts(resolve, out=print):
    clip_name, obj = workflow.add_prompts(resolve)
    out("samroto: added samroto_%s_box, samroto_%s_pos and samroto_%s_neg to %s's Fusion comp; "
        "drag them onto the object in the Fusion page." % (obj, obj, obj, clip_name))
    return obj


def preview(resolve, out=print, connect=None, **settings):
    """Preview Frame: every object's matte on the frame under the playhead, at once, shown by a
    Loader samroto_<object>_preview (live.py). One run, one connection: the image encoder runs
    for the frame each time (the samroto window keeps its session and reuses it)."""
    from .live import Live

    live = Live(resolve, connect=connect, **settings)
    try:
        return live.preview(out=out)
    finally:
        live.close()


def use_candidate(resolve, index, name=None, out=print, connect=None, **settings):
    """Use Candidate N: SAM 2's candidate ``index`` of an object's single include point on the
    frame under the playhead becomes its mask prompt there (a Loader samroto_<object>_mask)."""
    from .live import Live

    live = Live(resolve, connect=connect, **settings)
    try:
        return live.choose(name, index, out=out)
    finally:
        live.close()


def _review(resolve, settings):
    from .review import Review

    return Review(workflow.Plan(resolve, "forward", **settings))


def review(resolve, out=print, **settings):
    """Review Track: each object's tracked frames and the frames where it was lost (its
    matte is empty there: SAM 2's object score said it is not in the picture)."""
    found = _review(resolve, settings)
    for line in found.report():
        out("samroto: " + line)
    return found


def step(resolve, delta, out=print, **settings):
    """Next / Previous Tracked Frame: the playhead on the next (previous) frame with mattes,
    the matte Loaders on the clip's comp."""
    found = _review(resolve, settings)
    frame = found.step(delta)
    out("samroto: frame %d (tracked %s)" % (frame, found.plan.clip.name))
    return frame


def next_lost(resolve, out=print, **settings):
    """Next Lost Frame: the playhead on the next frame where an object was lost."""
    found = _review(resolve, settings).next_lost()
    if found is None:
        out("samroto: no object was lost on a tracked frame.")
        return None
    out("samroto: frame %d: %s lost (empty matte)" % (found[0], ", ".join(found[1])))
    return found


def show_masks(resolve, out=print, connect=None, **settings):
    """Show Masks: SAM 2's automatic masks on the frame under the playhead, numbered in the
    Console and on the overlay picture (a Loader samroto_auto_overlay on that frame)."""
    from .live import Live

    live = Live(resolve, connect=connect, **settings)
    try:
        return live.segment(out=out, progress=_every_tenth(out))
    finally:
        live.close()


def use_masks(resolve, numbers=None, out=print, connect=None, **settings):
    """Use Masks Under Points (``numbers`` None) or by number: each picked automatic mask
    becomes an object's mask prompt on this frame (live.Live.use_masks)."""
    from .live import Live

    live = Live(resolve, connect=connect, **settings)
    try:
        return live.use_masks(numbers, out=out)
    finally:
        live.close()


def _every_tenth(out):
    seen = [-1]

    def progress(done, total):
        pct = int(100 * done / max(1, total))
        if pct // 10 != seen[0] // 10:
            out("samroto: finding masks %d%%" % pct)
            seen[0] = pct
    return progress
