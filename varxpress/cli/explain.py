"""``varxpress explain``."""

from varxpress.interpret.report import add_arguments, run  # noqa: F401
