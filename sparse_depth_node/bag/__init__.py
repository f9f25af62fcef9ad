"""bag layer."""
