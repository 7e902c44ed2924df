"""Entry point of ``python -m anomalib_ea2d.data.prepare`` (see :mod:`anomalib_ea2d.data.prepare`)."""

import sys

from anomalib_ea2d.data.prepare import main

if __name__ == "__main__":
    sys.exit(main())
