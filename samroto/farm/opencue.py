"""OpenCue: the batch as an outline (opencue-pyoutline), a layer per shot and one frame per
layer, each running ``samroto track``; serialised to the job spec XML that Cuebot accepts
(``cuerun``/``outline.cuerun.launch`` submit it to a real Cuebot, docs/farm.md)."""

from __future__ import annotations

import shlex

from .batch import Shot, track_command

MAX_RETRIES = 3


def build_outline(shots: list[Shot], name: str = "samroto_mattes", samroto: str = "samroto", show: str = "testing",
                  shot_name: str = "samroto"):
    """An ``outline.Outline`` with one Shell layer per shot (frame range 1-1)."""
    from outline import Outline
    from outline.modules.shell import Shell

    ol = Outline(name, show=show, shot=shot_name)
    for shot in shots:
        # one shell line: RQD runs a frame's command through a shell, so arguments are quoted
        ol.add_layer(Shell(shot.name, command=shlex.join(track_command(shot, samroto)), range="1-1"))
    return ol


def job_spec(shots: list[Shot], user: str, **kwargs) -> str:
    """The OpenCue job spec XML for the batch (no Cuebot needed to build it)."""
    from outline.backend import cue
    from outline.cuerun import OutlineLauncher

    # a failed frame is retried on another host; `track` keeps finished mattes whole
    launcher = OutlineLauncher(build_outline(shots, **kwargs), user=user, maxretries=MAX_RETRIES)
    return cue.serialize_simple(launcher)
