"""The core's errors."""


class BackendUnavailable(ValueError):
    """A backend this machine cannot run; the message names the install."""
