"""``varxpress predict``."""

from varxpress.learning.evaluation import add_predict_arguments as add_arguments, run_predict as run  # noqa: F401
