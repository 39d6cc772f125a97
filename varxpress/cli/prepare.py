"""``varxpress prepare``."""

from varxpress.learning.dataset import add_arguments, run  # noqa: F401
