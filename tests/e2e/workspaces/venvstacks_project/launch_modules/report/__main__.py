"""`python -m report`: prints the layers on sys.path (C3 order) and a small table."""

import sys

import idna
import packaging
import six
import stack_info
import tabulate


def main() -> int:
    print("layers:", " ".join(stack_info.layers()))
    rows = [["idna", idna.encode("bücher.example").decode()], ["six", six.__version__]]
    print(tabulate.tabulate(rows, headers=["package", "value"]))
    print(f"tabulate {tabulate.__version__}, packaging {packaging.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
