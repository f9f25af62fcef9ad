"""The message layer's errors: why a message or a set gives no output."""


class UndecodableImage(ValueError):
    """A CompressedImage whose payload no decoder reads."""


class Dropped(Exception):
    """The set gives no output: ``counter`` names the diagnostics counter, the message why."""

    def __init__(self, counter: str, reason: str) -> None:
        super().__init__(reason)
        self.counter = counter
