"""The CLI's one exception: a user-facing failure, printed as one clear message (exit status 2).

Its own module so that every command imports it at the top without importing
``samroto.cli.main``, which imports the commands (``samroto.cli.main.CommandError`` is the
same class)."""


class CommandError(Exception):
    """A user-facing failure: printed as one clear message, exit status 2."""
