"""``python -m varxpress``."""
import sys

from varxpress.cli import main

sys.exit(main())
