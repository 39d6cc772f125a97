"""``varxpress background``."""

from varxpress.interpret.background import add_arguments, run  # noqa: F401
