"""The one exception type for user mistakes: the CLI prints its message as one line, no traceback."""


class UserError(Exception):
    """A mistake the user can fix (bad params, missing file, bad data); the message names the culprit."""
