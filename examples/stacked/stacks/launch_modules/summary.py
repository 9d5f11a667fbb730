"""The summary app: a module named after its file (`summary`), though it lives in launch_modules/."""

import sys

import numpy
import six


def main() -> int:
    values = numpy.linspace(0.0, 1.0, 5)
    print(f"summary: mean {values.mean():.2f} (numpy {numpy.__version__}, six {six.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
