"""The message layer's errors: why a message or a set gives no output."""


class UndecodableImage(ValueError):
    """A CompressedImage whose payload no decoder reads."""


class Dropped(Exception):
    """The set gives no output: ``counter`` names the diagnostics counter, the message why."""

    def __init__(self, counter: str, reason: str) -> None:
        super().__init__(reason)
        self.counter = counter


class TfNotYet(Dropped):
    """The set needs TF up to ``needed_ns`` (ns), which it does not hold yet: newer transforms
    may still place it (the node waits ``wait_for_transform``, a bag reads on)."""

    def __init__(self, counter: str, reason: str, needed_ns: int) -> None:
        super().__init__(counter, reason)
        self.needed_ns = needed_ns
