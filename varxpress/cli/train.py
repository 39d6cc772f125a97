"""``varxpress train``."""

from varxpress.learning.training import add_arguments, run  # noqa: F401
