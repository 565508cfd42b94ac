"""``samroto users``: the per-user tokens of a shared bridge (docs/bridge.md, "Shared GPU
host (facility admin)"). Run it as the bridge's user, on the bridge's machine: the users
file (``--file`` or setting ``bridge.users_file``) is readable by that user alone, and a
running bridge picks up every change within a second."""

from __future__ import annotations

import datetime
import json
import os
import sys
from pathlib import Path

from samroto.cli.errors import CommandError


def register(sub):
    p = sub.add_parser("users", help="issue, revoke and list the tokens of a shared bridge's users",
                       description="Per-user tokens of a shared bridge (samroto serve with --users-file). The file "
                                   "keeps only each token's SHA-256; a token is shown once, when it is issued.")
    kinds = p.add_subparsers(dest="users_action", metavar="ACTION", required=True)
    issue = kinds.add_parser("issue", help="a new token for a user (replacing any earlier one)")
    issue.add_argument("user")
    issue.add_argument("--connection-file", metavar="OUT.json",
                       help="also write the file to hand to the user (their remote.json): address, CA, user, token")
    issue.add_argument("--address", metavar="HOST:PORT", help="the bridge as the artists' machines reach it "
                       "(with --connection-file)")
    issue.add_argument("--ca", metavar="CA.pem", help="the CA certificate that signed the bridge's (with "
                       "--connection-file; its text goes into the file; leave out for a CA the machines trust)")
    revoke = kinds.add_parser("revoke", help="revoke a user's token (their connections are closed)")
    revoke.add_argument("user")
    listing = kinds.add_parser("list", help="the users, when their tokens were issued and revoked")
    listing.add_argument("--json", action="store_true", help="as JSON")
    for q in (issue, revoke, listing):
        q.add_argument("--file", metavar="USERS.json", help="the users file (default: setting bridge.users_file)")
        q.set_defaults(run=run)
    p.set_defaults(run=run)
    return p


def run(args, settings):
    from samroto.bridge import users

    path = args.file or settings["bridge.users_file"]
    if not path:
        raise CommandError("which users file? Give --file, or set bridge.users_file (the file `samroto serve` "
                           "reads its users from)")
    path = os.path.abspath(os.path.expanduser(path))
    try:
        if args.users_action == "issue":
            return _issue(args, path)
        if args.users_action == "revoke":
            if not users.revoke(path, args.user):
                raise CommandError(f"{args.user} has no token to revoke in {path}")
            print(f"revoked the token of {args.user}; a running bridge closes their connections within a second")
            return 0
        rows = users.listing(path)
    except users.UsersError as exc:
        raise CommandError(str(exc)) from None
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    if not rows:
        print(f"no users in {path}")
    for row in rows:
        state = f"revoked {_when(row['revoked'])}" if row["revoked"] else "active"
        print(f"{row['user']:<24} issued {_when(row['issued'])}  {state}")
    return 0


def _issue(args, path: str) -> int:
    from samroto.bridge import users
    from samroto.bridge.discovery import write_private_json

    if args.connection_file and not args.address:
        raise CommandError("--connection-file needs --address HOST:PORT (the bridge as the artists reach it)")
    address = None
    if args.address:
        host, _, port = args.address.rpartition(":")
        if not host or not port.isdigit():
            raise CommandError(f"--address {args.address!r}: expected HOST:PORT, e.g. gpu01.studio.lan:7443")
        address = (host.strip("[]"), int(port))
    ca_pem = None
    if args.ca:
        try:
            with open(os.path.expanduser(args.ca), encoding="ascii") as f:
                ca_pem = f.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"--ca {args.ca}: {exc}") from None
        if "-----BEGIN CERTIFICATE-----" not in ca_pem:
            raise CommandError(f"--ca {args.ca} is not a PEM certificate")
    token = users.issue(path, args.user)
    if args.connection_file and address is not None:
        info = {"host": address[0], "port": address[1], "user": args.user, "token": token}
        if ca_pem:
            info["ca_pem"] = ca_pem
        write_private_json(Path(os.path.expanduser(args.connection_file)), info)
        print(f"issued a token for {args.user}; their connection file is {args.connection_file} (give it to them "
              "privately: it holds the token; they put it in their samroto config folder as remote.json)")
    else:
        print(f"issued a token for {args.user} (shown this once; {path} keeps only its SHA-256):", file=sys.stderr)
        print(token)
    return 0


def _when(stamp) -> str:
    if not stamp:
        return "-"
    return datetime.datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M")
