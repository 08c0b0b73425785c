"""The one exception for mistakes a user can fix (bad input, a wrong file, a bad option value).

`shared.cli` prints it as one line with exit status 2, never a traceback.
"""


class UserError(Exception):
    """A mistake the user can fix; the message says what is wrong and, where it can, what to do."""
