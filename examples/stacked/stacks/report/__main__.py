"""`python -m report`: prints the layers on sys.path (C3 order) and a small table computed with numpy."""

import sys

import numpy
import packaging
import stack_info
import tabulate


def main() -> int:
    print("layers:", " ".join(stack_info.layers()))
    rows = [[n, int(numpy.prod(numpy.arange(1, n + 1)))] for n in range(1, 6)]
    print(tabulate.tabulate(rows, headers=["n", "n!"]))
    print(f"numpy {numpy.__version__}, tabulate {tabulate.__version__}, packaging {packaging.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
