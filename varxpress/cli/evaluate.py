"""``varxpress evaluate``."""

from varxpress.learning.evaluation import add_evaluate_arguments as add_arguments, run_evaluate as run  # noqa: F401
