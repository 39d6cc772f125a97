"""``varxpress hyperopt``."""

from varxpress.learning.tuning import add_arguments, run  # noqa: F401
