"""Launch module of the example application: reports MLX's version and computes something on the CPU."""

import sys

import mlx.core as mx


def main() -> int:
    a = mx.array([[1.0, 2.0], [3.0, 4.0]])
    b = mx.matmul(a, a.T)
    mx.eval(b)
    print(f"MLX {mx.__version__} on {mx.default_device()}")
    print(f"a @ a.T = {b.tolist()}")
    if sys.argv[1:]:
        print(f"arguments: {' '.join(sys.argv[1:])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
