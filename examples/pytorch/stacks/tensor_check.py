"""Launch module of the tensor apps: which torch build this is, and a small computation with it."""

import sys

import torch


def main() -> int:
    a = torch.arange(1.0, 7.0).reshape(2, 3)
    product = a @ a.T
    print(
        f"torch {torch.__version__} (CUDA build: {torch.version.cuda is not None}, CUDA available: "
        f"{torch.cuda.is_available()})"
    )
    print(f"a @ a.T = {product.tolist()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
