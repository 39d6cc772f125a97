"""``varxpress workflow``."""

from varxpress.workflow.runner import add_arguments, run  # noqa: F401
