"""`python -m hello`: an app directly on the runtime, with the runtime's own `packaging`."""

import sys

import packaging


def main() -> int:
    print(f"hello from {sys.prefix.rsplit('/', 1)[-1]} (packaging {packaging.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
