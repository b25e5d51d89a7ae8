"""``python -m neurosim ...``: the same command as ``neurosim ...``."""
import os
import sys

from .cli import main

if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.exit(main())
