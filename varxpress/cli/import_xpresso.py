"""``varxpress import-xpresso``."""

from varxpress.models.xpresso import add_arguments, run  # noqa: F401
