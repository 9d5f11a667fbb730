#!/usr/bin/env python3
"""Lists the standard library files the helper tool imports, in rules/private/tool_stdlib_bytecode.txt.

The tool interpreter's action compiles bytecode for these files only (python/tool_environment.py):
compiling the whole standard library took 1 s of every cold build before the first action, these ~140 files take
a third of that. A module missing from the list is imported from source, slower but never broken;
tests/unit/test_tool_stdlib.py fails when the list is stale. Run it from the dev environment (tools/test sets one
up), whose Python has the tool's version:

    PYTHONPATH=python ~/.cache/rules_venvstacks/devenv-*/bin/python tools/list_tool_stdlib.py [--check]
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIST = ROOT / "rules" / "private" / "tool_stdlib_bytecode.txt"
TOOL_PYTHON = json.loads((ROOT / "rules" / "private" / "tool_wheels.json").read_text())["python"]
HEADER = "# Written by tools/list_tool_stdlib.py: the standard library files the helper tool imports.\n"

# Runs in a fresh interpreter as the tool does (-S -E -s: no site, only the tool and its dependencies on sys.path):
# imports every module of the tool and every module its import statements name, then prints the standard library
# files among what was imported.
_IMPORT_ALL = """
import ast, importlib, os, pkgutil, sys, sysconfig
import stacktool
names = {m.name for m in pkgutil.walk_packages(stacktool.__path__, "stacktool.") if ".injected" not in m.name}
for name in sorted(names):
    module = importlib.import_module(name)
    with open(module.__file__, encoding="utf-8") as f:
        for node in ast.walk(ast.parse(f.read())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
for name in sorted(names):
    try:
        importlib.import_module(name)
    except ImportError:  # a module of another platform (winreg, msvcrt, ...)
        pass
stdlib = os.path.realpath(sysconfig.get_paths()["stdlib"])
files = set()
for module in list(sys.modules.values()):
    path = os.path.realpath(getattr(module, "__file__", None) or "")
    if path.endswith(".py") and path.startswith(stdlib + os.sep):
        relative = os.path.relpath(path, stdlib)
        if not relative.startswith("site-packages" + os.sep):
            files.add(relative.replace(os.sep, "/"))
print("\\n".join(sorted(files)))
"""


def imported_stdlib_files() -> str:
    """The list, as the file holds it."""
    paths = [str(ROOT / "python"), *{sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}]
    code = f"import sys; sys.path[:0] = {paths!r}\n" + _IMPORT_ALL
    command = [sys.executable, "-S", "-E", "-s", "-B", "-c", code]
    return HEADER + subprocess.run(command, capture_output=True, text=True, check=True).stdout


def main(argv: list[str]) -> int:
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if version != TOOL_PYTHON:
        print(f"run this with Python {TOOL_PYTHON} (the tool interpreter's), not {version}", file=sys.stderr)
        return 2
    text = imported_stdlib_files()
    if argv == ["--check"]:
        if LIST.read_text() != text:
            print(f"{LIST.relative_to(ROOT)} is stale: run tools/list_tool_stdlib.py", file=sys.stderr)
            return 1
        return 0
    LIST.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
