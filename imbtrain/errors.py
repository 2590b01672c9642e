"""Errors that reach the user as one clear line (the CLI exits with status 2)."""


class UserError(Exception):
    """Bad user input: a wrong key or value, a missing or malformed file.

    The message is one line that names the problem and what is allowed.
    """
