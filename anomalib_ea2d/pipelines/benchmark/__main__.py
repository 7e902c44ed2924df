"""Entry point of ``python -m anomalib_ea2d.pipelines.benchmark`` (see :mod:`anomalib_ea2d.pipelines.benchmark.cli`)."""

import sys

from anomalib_ea2d.pipelines.benchmark.cli import main

if __name__ == "__main__":
    sys.exit(main())
