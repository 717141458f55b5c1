"""The one exception type that reaches the user as a clear message (never a traceback)."""


class HorqError(Exception):
    """A problem with the user's input or environment, stated in one line."""
