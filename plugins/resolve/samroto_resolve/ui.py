"""The samroto window (Fusion's UIManager): objects and frames found, Track forward /
backward / both, a progress bar, Cancel. The work runs in the host kit's TrackingJob (a
thread); a UIManager Timer polls it, so Resolve stays responsive.

UIManager (fusion.UIManager, bmd.UIDispatcher) is not available to scripts in the free
edition of Resolve 19.1 and later: ``show`` then says so and points to the no-window scripts.
"""

from . import workflow
from .kit import hostkit

BAR = 30


def progress_text(fraction, done, total):
    filled = int(round(BAR * fraction))
    return u"[%s%s] %d/%d frames" % (u"\u2588" * filled, u"\u00b7" * (BAR - filled), done, total)


class Controller(object):
    """The window's logic, independent of widgets (tested directly)."""

    def __init__(self, resolve, set_text, set_enabled, connect=None):
        self.resolve = resolve
        self.set_text = set_text  # (widget id, text)
        self.set_enabled = set_enabled  # (widget id, bool)
        self.connect = connect  # how to reach the bridge (None: the running one, else start it)
        self.job = None
        self.plan = None  # type: workflow.Plan | None
        self.live = None  # the live session (Preview frame, Candidate 1-3), kept while the window is open
        self.seen = {}  # review: (matte file, mtime) -> object in it, so stepping reads each file once

    def refresh(self, handles=None):
        try:
            plan = workflow.Plan(self.resolve, "forward", handles=handles)
            self.set_text("Info", plan.summary())
        except Exception as exc:
            self.set_text("Info", str(exc))

    def track(self, direction, handles=None, add_loader=None):
        if self.job is not None and self.job.running:
            return
        try:
            self.plan = workflow.Plan(self.resolve, direction, handles=handles, add_loader=add_loader)
        except Exception as exc:
            self.set_text("Status", str(exc))
            return
        self.set_text("Info", self.plan.summary())
        self.job = self.plan.job(self.connect).start()
        self._buttons(running=True)
        self.set_text("Status", "Tracking %s ..." % direction)

    def cancel(self):
        if self.job is not None:
            self.job.cancel()
            self.set_text("Status", "Cancelling ...")

    def tick(self):
        """Timer: apply the job's events; True while it runs."""
        if self.job is None:
            return False
        self.job.poll()
        self.set_text("Progress", progress_text(self.job.fraction, self.job.done, self.job.total))
        if self.job.running:
            return True
        message = self.job.summary()
        if self.job.state in (hostkit.DONE, hostkit.CANCELLED) and self.job.frames:
            try:
                assert self.plan is not None  # set with the job
                imported = self.plan.finish(self.job)
                message += " Imported %d matte(s) into 'samroto mattes'; attach them in the Color page " \
                           "(right-click the node editor > Add Matte)." % len(imported)
                message += "".join(" " + w for w in getattr(self.plan, "warnings", []))
            except Exception as exc:
                message += " Import failed: %s" % exc
        self.set_text("Status", message)
        self._buttons(running=False)
        self.job_done = self.job
        self.job = None
        return False

    def add_object(self):
        try:
            clip_name, obj = workflow.add_prompts(self.resolve)
            self.set_text("Status", "Added samroto_%s_box/_pos/_neg to %s: drag them in the Fusion page."
                          % (obj, clip_name))
        except Exception as exc:
            self.set_text("Status", str(exc))
        self.refresh()

    def _live(self):
        from .live import Live

        if self.live is None:
            self.live = Live(self.resolve, connect=self.connect)
        return self.live.refresh()

    def preview(self):
        """Preview frame: every object's matte on the frame under the playhead, at once (the
        frame's image features are computed once while the window is open)."""
        lines = []  # type: list
        try:
            self._live().preview(out=lines.append)
        except Exception as exc:
            lines.append(str(exc))
        self.set_text("Status", "\n".join(line.replace("samroto: ", "", 1) for line in lines))

    def choose(self, index):
        """Candidate ``index`` (1-3) of the selected object's include point: its prompt now."""
        lines = []  # type: list
        try:
            self._live().choose(None, index, out=lines.append)
        except Exception as exc:
            lines.append(str(exc))
        self.set_text("Status", "\n".join(line.replace("samroto: ", "", 1) for line in lines))

    def _review(self, act):
        from .review import Review

        try:
            found = Review(workflow.Plan(self.resolve, "forward"), cache=self.seen)
            line = act(found)
            self.set_text("Status", "\n".join(([line] if line else []) + found.report()))
        except Exception as exc:
            self.set_text("Status", str(exc))

    def review_step(self, delta):
        """Previous / next tracked frame, the mattes on the clip."""
        self._review(lambda found: "Frame %d" % found.step(delta))

    def next_lost(self):
        """The next frame where an object was lost (its matte is empty)."""
        def act(found):
            hit = found.next_lost()
            return "Frame %d: %s lost" % (hit[0], ", ".join(hit[1])) if hit else "No object was lost."
        self._review(act)

    def close(self):
        if self.job is not None:
            self.cancel()
        if self.live is not None:
            self.live.close()

    def _buttons(self, running):
        for wid in ("Forward", "Backward", "Both", "AddObject"):
            self.set_enabled(wid, not running)
        self.set_enabled("Cancel", running)


def show(resolve, fusion, bmd, connect=None):
    ui = getattr(fusion, "UIManager", None) if fusion is not None else None
    if ui is None or bmd is None or not hasattr(bmd, "UIDispatcher"):
        print("samroto: this Resolve cannot open script windows (the free edition of Resolve 19.1 "
              "and later has no UIManager). Use Workspace > Scripts > samroto > Track Forward / "
              "Track Backward / Track Both and Cancel Tracking; progress shows in Workspace > Console.")
        return None
    disp = bmd.UIDispatcher(ui)
    win = disp.AddWindow(
        {"ID": "samrotoWin", "WindowTitle": "samroto - SAM 2 mattes", "Geometry": [200, 200, 560, 360]},
        ui.VGroup([
            ui.Label({"ID": "Info", "Text": "", "WordWrap": True}),
            ui.HGroup({"Weight": 0}, [
                ui.Label({"Text": "Handles"}), ui.SpinBox({"ID": "Handles", "Value": 12, "Minimum": 0, "Maximum": 10000}),
                ui.CheckBox({"ID": "Loader", "Text": "Add a Loader in the comp", "Checked": False}),
            ]),
            ui.HGroup({"Weight": 0}, [
                ui.Button({"ID": "AddObject", "Text": "Add object"}),
                ui.Button({"ID": "Backward", "Text": "Track backward"}),
                ui.Button({"ID": "Both", "Text": "Track both"}),
                ui.Button({"ID": "Forward", "Text": "Track forward"}),
                ui.Button({"ID": "Cancel", "Text": "Cancel", "Enabled": False}),
            ]),
            ui.HGroup({"Weight": 0}, [
                ui.Button({"ID": "Preview", "Text": "Preview frame"}),
                ui.Button({"ID": "Candidate1", "Text": "Candidate 1"}),
                ui.Button({"ID": "Candidate2", "Text": "Candidate 2"}),
                ui.Button({"ID": "Candidate3", "Text": "Candidate 3"}),
            ]),
            ui.HGroup({"Weight": 0}, [
                ui.Button({"ID": "PrevTracked", "Text": "< Tracked frame"}),
                ui.Button({"ID": "NextTracked", "Text": "Tracked frame >"}),
                ui.Button({"ID": "NextLost", "Text": "Next lost frame"}),
            ]),
            ui.Label({"ID": "Progress", "Text": progress_text(0, 0, 0), "Weight": 0}),
            ui.Label({"ID": "Status", "Text": "", "WordWrap": True, "Weight": 0}),
        ]))
    items = win.GetItems()
    timer = ui.Timer({"ID": "samrotoPoll", "Interval": 200, "SingleShot": False})

    def set_text(wid, text):
        items[wid].Text = text

    def set_enabled(wid, on):
        items[wid].Enabled = on

    ctl = Controller(resolve, set_text, set_enabled, connect=connect)

    def settings():
        return int(items["Handles"].Value), bool(items["Loader"].Checked)

    def start(direction):
        handles, loader = settings()
        ctl.track(direction, handles=handles, add_loader=loader)
        if ctl.job is not None:
            timer.Start()

    def on_timer(ev):
        if not ctl.tick():
            timer.Stop()

    def on_close(ev):
        ctl.close()
        timer.Stop()
        disp.ExitLoop()

    win.On.Forward.Clicked = lambda ev: start("forward")
    win.On.Backward.Clicked = lambda ev: start("backward")
    win.On.Both.Clicked = lambda ev: start("both")
    win.On.Cancel.Clicked = lambda ev: ctl.cancel()
    win.On.AddObject.Clicked = lambda ev: ctl.add_object()
    win.On.Preview.Clicked = lambda ev: ctl.preview()
    win.On.Candidate1.Clicked = lambda ev: ctl.choose(1)
    win.On.Candidate2.Clicked = lambda ev: ctl.choose(2)
    win.On.Candidate3.Clicked = lambda ev: ctl.choose(3)
    win.On.PrevTracked.Clicked = lambda ev: ctl.review_step(-1)
    win.On.NextTracked.Clicked = lambda ev: ctl.review_step(1)
    win.On.NextLost.Clicked = lambda ev: ctl.next_lost()
    win.On.samrotoWin.Close = on_close
    disp.On.samrotoPoll.Timeout = on_timer
    ctl.refresh()
    win.Show()
    disp.RunLoop()
    win.Hide()
    return ctl
