"""Entry point of the helper tool in Bazel actions.

    python -S -E -s -B run_stacktool.py [--path DIR]... VERB [ARGS]...

Each `--path` puts one of the tool's dependencies (an unpacked wheel) on sys.path; with -S -E -s nothing else
from the interpreter's environment is.
"""

import sys


def main() -> int:
    args = sys.argv[1:]
    while len(args) >= 2 and args[0] == "--path":
        sys.path.append(args[1])
        args = args[2:]
    from stacktool.cli import main as cli_main

    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main())
