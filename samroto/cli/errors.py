"""The CLI's exceptions: a user-facing failure, printed as one clear message, no traceback.

Exit status (docs/video.md, ``samroto track --help``): 0 done, 1 runtime failure
(:class:`CommandFailed`: an unreadable frame, a full disk, a model that cannot be built),
2 usage (:class:`CommandError`: bad arguments, prompts, settings), 130 interrupted
(Ctrl-C or SIGTERM), 141 output pipe closed (``samroto models list --json | head``).

Its own module so that every command imports it at the top without importing
``samroto.cli.main``, which imports the commands (``samroto.cli.main.CommandError`` is the
same class)."""

USAGE = 2
FAILURE = 1


class CommandError(Exception):
    """A user-facing failure in what was asked (arguments, prompts, settings): printed as
    one clear message, exit status 2. ``reported``: the command already printed it (its
    ``--json`` summary), so main prints nothing more on stdout."""

    status = USAGE

    def __init__(self, message: str = "", reported: bool = False):
        super().__init__(message)
        self.reported = reported


class CommandFailed(CommandError):
    """A runtime failure (I/O mid-run, a damaged frame, a full disk, the model): one clear
    message, exit status 1."""

    status = FAILURE
