"""Writes the helper tool's interpreter: the part of an unpacked python-build-standalone runtime that runs the
tool, with its standard library zipped.

    UNPACKED/bin/python3.11 -S -E -s -B tool_interpreter.py UNPACKED OUT LIST

Run by the interpreter of UNPACKED (a runtime archive's `python/` directory, as the rules unpack it), which says
where its own files are: the standard library is sysconfig's `stdlib` path, the zip Python would import it from is
the `.zip` entry of its default sys.path (`lib/python311.zip`; `python311.zip` on Windows), and its extension
modules are the sys.path entries inside the standard library (`lib-dynload`). OUT gets every file of UNPACKED
outside the standard library, the extension modules, `os.py` (the landmark by which Python finds its prefix) and
that zip: the standard library's sources, with bytecode for the files LIST names (one path relative to the standard
library per line: the modules the tool imports, written by tools/list_tool_stdlib.py). Every action then stages ~70
files instead of ~600 and imports what the tool needs without compiling it. Standard library only.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig

import bytecode_zip


def layout() -> tuple[str, str, list[str]]:
    """(standard library, its zip, extension module directories) of the running interpreter, relative to its
    prefix, with `/` separators."""

    def relative(path: str) -> str:
        return os.path.relpath(path, sys.base_prefix).replace(os.sep, "/")

    stdlib = relative(sysconfig.get_path("stdlib"))
    zips = [relative(entry) for entry in sys.path if entry.endswith(".zip")]
    if len(zips) != 1:
        raise SystemExit(f"tool_interpreter.py: expected one zip on the default sys.path, found {zips} in {sys.path}")
    extensions = [relative(entry) for entry in sys.path if relative(entry).startswith(stdlib + "/")]
    return stdlib, zips[0], extensions


def listed(path: str) -> set[str]:
    with open(path, encoding="utf-8") as f:
        return {line.strip() for line in f if line.strip() and not line.startswith("#")}


def write(unpacked: str, out: str, compiled: set[str]) -> None:
    stdlib, zipped, extensions = layout()
    kept_in_stdlib = (f"{stdlib}/os.py", *(f"{directory}/" for directory in extensions))
    sources: dict[str, bytes] = {}
    # followlinks: a sandbox may stage the unpacked runtime's files and directories as links to them.
    for directory, _, files in os.walk(unpacked, followlinks=True):
        for name in files:
            path = os.path.join(directory, name)
            relative = os.path.relpath(path, unpacked).replace(os.sep, "/")
            in_stdlib = relative.startswith(stdlib + "/")
            if in_stdlib and name.endswith(".py"):
                with open(path, "rb") as f:
                    sources[relative[len(stdlib) + 1 :]] = f.read()
            if not in_stdlib or relative.startswith(kept_in_stdlib):
                target = os.path.join(out, relative)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copy(path, target)  # the content and the mode of what a link names
    target = os.path.join(out, zipped)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    bytecode_zip.write(target, sources, compiled)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    unpacked, out, compiled = argv
    write(unpacked, out, listed(compiled))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
