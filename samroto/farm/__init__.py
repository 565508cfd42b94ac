"""Render-farm jobs for batches of shots: Open Job Description templates (Deadline Cloud,
``openjd run``) and OpenCue outlines. The unit of work is a shot: SAM 2 propagates
sequentially, so frames of one shot are never split across machines. Every task runs the
tested ``samroto track`` command (docs/farm.md)."""

from .batch import BatchError, Shot, load_batch, track_command

__all__ = ["BatchError", "Shot", "load_batch", "track_command"]
