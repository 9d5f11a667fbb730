"""The base of every error that is the user's to fix: the tool prints its message alone, without a traceback."""


class UserError(Exception):
    """An input that cannot be processed; the message names it and says what to do."""
