"""``samroto farm``: a batch of shots as a render-farm job on an engine the facility runs
(Open Job Description for Deadline Cloud and ``openjd run``; OpenCue). docs/farm.md."""

from __future__ import annotations

import getpass
import json
import os
import sys

from samroto.cli.errors import CommandError


def register(sub):
    p = sub.add_parser("farm", help="write render-farm jobs for a batch of shots (OpenJD, OpenCue)",
                       description="Write a farm job that tracks every shot of SHOTS.json with `samroto track` "
                                   "(one task per shot).")
    kinds = p.add_subparsers(dest="farm_kind", metavar="KIND", required=True)
    jd = kinds.add_parser("openjd", help="an Open Job Description job template (Deadline Cloud, `openjd run`)")
    jd.add_argument("batch", metavar="SHOTS.json")
    jd.add_argument("--out", required=True, metavar="job.template.yaml", help="template file (.yaml or .json)")
    jd.add_argument("--name", default="samroto mattes", help="job name")
    jd.add_argument("--threads", type=int, default=4, metavar="N",
                    help="CPU threads per task (default 4; see docs/farm.md for tasks x threads per node)")
    cue = kinds.add_parser("opencue", help="an OpenCue job spec (XML) built with pyoutline")
    cue.add_argument("batch", metavar="SHOTS.json")
    cue.add_argument("--out", required=True, metavar="job.xml")
    cue.add_argument("--name", default="samroto_mattes", help="job name")
    cue.add_argument("--show", default="testing", help="OpenCue show")
    cue.add_argument("--user", default=None, help="OpenCue user (default: you)")
    cue.add_argument("--samroto", default="samroto", help="the samroto command on the render nodes")
    for q in (jd, cue):
        q.set_defaults(run=run)
    p.set_defaults(run=run)


def run(args, settings):
    from samroto.core.io.mattes import write_text_atomic
    from samroto.farm import BatchError, load_batch

    try:
        shots = load_batch(args.batch)
    except BatchError as exc:
        raise CommandError(str(exc)) from None
    if args.farm_kind == "openjd":
        from samroto.farm.openjd import job_template

        template = job_template(shots, args.name, threads=args.threads)
        if args.out.endswith(".json"):
            text = json.dumps(template, indent=1)
        else:
            import yaml

            text = yaml.safe_dump(template, sort_keys=False, width=1000)
    else:
        try:
            from samroto.farm.opencue import job_spec
        except ImportError as exc:
            raise CommandError(f"OpenCue jobs need opencue-pyoutline: pip install opencue-pyoutline ({exc})") from None
        text = job_spec(shots, user=args.user or getpass.getuser(), name=args.name, show=args.show,
                        samroto=args.samroto)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    write_text_atomic(args.out, text)
    print(f"wrote {args.out}: {len(shots)} shot(s), one task each", file=sys.stderr)
    return 0
