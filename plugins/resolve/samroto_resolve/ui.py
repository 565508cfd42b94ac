"""The samroto window (Fusion's UIManager): objects and frames found, Track forward /
backward / both, Show masks, a progress bar, Cancel. The work runs in the host kit's
TrackingJob or ProgressJob (a thread); a UIManager Timer polls it, so Resolve stays responsive.

UIManager (fusion.UIManager, bmd.UIDispatcher) is not available to scripts in the free
edition of Resolve 19.1 and later: ``show`` then says so and points to the no-window scripts.
"""

from typing import Any

from . import clip as cliplib
from . import finishing, prompts, workflow
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
        if isinstance(self.job, hostkit.ProgressJob):
            return self._tick_masks()
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

    def _tick_masks(self):
        job = self.job  # type: Any
        job.poll()
        self.set_text("Progress", progress_text(job.fraction, job.done, job.total).replace("frames", "clicks"))
        if job.running:
            return True
        if job.result is not None:
            assert self.live is not None  # show_masks found the masks with it
            lines = []  # type: list
            try:
                self.live.show_masks(job.result, out=lines.append)
            except Exception as exc:
                lines.append(str(exc))
            text = "\n".join(line.replace("samroto: ", "", 1) for line in lines)
        else:
            text = job.message
        self.set_text("Status", text)
        self._buttons(running=False)
        self.job_done, self.job = job, None
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
        text = "\n".join(line.replace("samroto: ", "", 1) for line in lines)
        self.set_text("Status", text)
        return text

    def choose(self, index):
        """Candidate ``index`` (1-3) of the selected object's include point: its prompt now."""
        lines = []  # type: list
        try:
            self._live().choose(None, index, out=lines.append)
        except Exception as exc:
            lines.append(str(exc))
        self.set_text("Status", "\n".join(line.replace("samroto: ", "", 1) for line in lines))

    def show_masks(self):
        """Show masks: SAM 2's automatic masks on the current frame, found on a worker thread
        (progress in the window, Cancel stops it), then numbered here and on the overlay
        Loader samroto_auto_overlay. True when it started (the timer then calls tick)."""
        if self.job is not None and self.job.running:
            return False
        try:
            live = self._live()
            frame = live.frame
        except Exception as exc:
            self.set_text("Status", str(exc))
            return False
        self.job = hostkit.ProgressJob(lambda progress, cancelled: live.find_masks(frame, progress, cancelled),
                                       what="Show masks", name="samroto-masks").start()
        self._buttons(running=True)
        self.set_text("Status", "Finding the automatic masks on frame %d ..." % frame)
        return True

    def use_masks(self, text):
        """Use masks: the numbers typed ("1, 3, 5"), each a new object; nothing typed: the
        mask under each object's include point."""
        try:
            numbers = [int(n) for n in text.replace(",", " ").split()] or None
        except ValueError:
            self.set_text("Status", "Type the masks' numbers, e.g. 1, 3, 5 (or nothing: the masks under the "
                                    "include points).")
            return
        self._run_live(lambda live, out: live.use_masks(numbers, out=out))
        self.refresh()

    def _run_live(self, act):
        lines = []  # type: list
        try:
            act(self._live(), lines.append)
        except Exception as exc:
            lines.append(str(exc))
        self.set_text("Status", "\n".join(line.replace("samroto: ", "", 1) for line in lines))

    def apply_finish(self, values):
        """Finish: save the values with the clip (its comp) and preview the current frame
        with them; every later Track is finished the same way. None: the bridge's settings."""
        try:
            comp = prompts.clip_comp(cliplib.current_item(self.resolve)[2], create=False)
            if comp is None:
                raise prompts.PromptReadError("This clip has no samroto prompts yet: Add object first.")
            saved = finishing.save(comp, values)
        except Exception as exc:
            self.set_text("Status", str(exc))
            return
        self.set_text("Status", finishing.describe(saved) + "\n" + self.preview())

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
        for wid in ("Forward", "Backward", "Both", "AddObject", "ShowMasks", "UseMasks"):
            self.set_enabled(wid, not running)
        self.set_enabled("Cancel", running)


def saved_finish(resolve):
    """The Finish values saved with the clip under the playhead (None: none, or no clip)."""
    try:
        comp = prompts.clip_comp(cliplib.current_item(resolve)[2], create=False)
    except Exception:  # noqa: BLE001 - no clip yet: the window opens with the defaults
        return None
    return finishing.read(comp) if comp is not None else None


def finish_widgets(ui, saved=None):
    """The Finish controls (Resolve's names, plate pixels), at the clip's saved values."""
    saved = saved or {}
    widgets = []
    for setting, label, kind, low, high, default, tip in finishing.CONTROLS:
        value = saved.get(setting, default)
        if kind == "bool":
            widgets.append(ui.CheckBox({"ID": "Finish_" + setting, "Text": label, "Checked": bool(value),
                                        "ToolTip": tip}))
        else:
            widgets.append(ui.Label({"Text": label, "ToolTip": tip}))
            widgets.append(ui.DoubleSpinBox({"ID": "Finish_" + setting, "Value": float(value), "Minimum": low,
                                             "Maximum": high, "Decimals": 2, "ToolTip": tip}))
    return widgets


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
                ui.Button({"ID": "ShowMasks", "Text": "Show masks"}),
                ui.LineEdit({"ID": "MaskNumbers", "PlaceholderText": "masks to keep: 1, 3 (empty: under the points)"}),
                ui.Button({"ID": "UseMasks", "Text": "Use masks"}),
            ]),
            ui.HGroup({"Weight": 0}, [
                ui.Button({"ID": "PrevTracked", "Text": "< Tracked frame"}),
                ui.Button({"ID": "NextTracked", "Text": "Tracked frame >"}),
                ui.Button({"ID": "NextLost", "Text": "Next lost frame"}),
            ]),
            ui.HGroup({"Weight": 0}, finish_widgets(ui, saved_finish(resolve)) + [ui.Button({"ID": "ApplyFinish", "Text": "Apply finish"})]),
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
    def finish_values(ev):
        values = {}
        for setting, _, kind, _, _, _, _ in finishing.CONTROLS:
            widget = items["Finish_" + setting]
            values[setting] = bool(widget.Checked) if kind == "bool" else float(widget.Value)
        ctl.apply_finish(values)

    win.On.ApplyFinish.Clicked = finish_values
    def masks(ev):
        if ctl.show_masks():
            timer.Start()

    win.On.ShowMasks.Clicked = masks
    win.On.UseMasks.Clicked = lambda ev: ctl.use_masks(str(items["MaskNumbers"].Text or ""))
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
