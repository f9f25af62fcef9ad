"""The bag layer's errors."""


class DamagedBag(ValueError):
    """A bag that cannot be read past some point; the message says where."""
