"""Checks what a stack deployed by rules_venvstacks offers an application: its packages, and no installer."""

import importlib.util
import sys

import IPython
import mlx.core as mx


def main() -> int:
    if importlib.util.find_spec("pip") is not None:
        print("pip is importable: the runtime layer should not ship it", file=sys.stderr)
        return 1
    total = mx.sum(mx.array([1.0, 2.0, 3.0]))
    print(f"IPython {IPython.__version__}, MLX {mx.__version__}: sum = {total.item()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
