"""The root of the errors a user can cause; the command line prints them as one line."""


class OvernightError(Exception):
    """A problem with the user's input or environment; the message says what and what to do."""
