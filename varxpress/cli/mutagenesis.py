"""``varxpress mutagenesis``."""

from varxpress.interpret.mutagenesis import add_arguments, run  # noqa: F401
