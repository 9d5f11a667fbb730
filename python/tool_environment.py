"""Writes what the helper tool runs with on an exec platform: its interpreter, with the standard library zipped, and
the zip of its pure-Python dependencies.

    UNPACKED/bin/python3.11 -S -E -s -B tool_environment.py UNPACKED OUT LIST [--dependencies ZIP WHEEL...]

The rules' `stacktool_environment` action runs it right after the exec platform's tar has unpacked a
python-build-standalone archive's `python/` directory into UNPACKED, with the interpreter from there, which says
where its own files are: the standard library is sysconfig's `stdlib` path, the zip Python would import it from is
the `.zip` entry of its default sys.path (`lib/python311.zip`; `python311.zip` on Windows), and its extension
modules are the sys.path entries inside the standard library (`lib-dynload`).

OUT gets every file of UNPACKED outside the standard library, the extension modules, `os.py` (the landmark by
which Python finds its prefix) and that zip: the standard library's sources, with bytecode for the files LIST
names (one path relative to the standard library per line: the modules the tool imports, written by
tools/list_tool_stdlib.py). Every action then stages ~70 files instead of ~600. `--dependencies`: every member of
the WHEELs, with bytecode for every `.py`, in ZIP: one file on sys.path instead of a wheel each.

Bytecode is an unchecked hash-based .pyc (PEP 552) beside its source (`x.py` + `x.pyc`, the layout zipimport
reads): it is never compared with its source, so it needs no time stamps, and the tool never compiles what it
imports. Members are sorted, stored and dated 1980-01-01, so the same inputs give the same bytes. Standard library
only. Written here rather than with `compileall`/`py_compile`, which write `__pycache__` files that zipimport does
not read.
"""

from __future__ import annotations

import argparse
import importlib.util
import marshal
import os
import shutil
import sys
import sysconfig
import zipfile
from collections.abc import Iterator

# PEP 552 flags: bit 0 = hash-based, bit 1 = check the source. Unchecked: only bit 0.
UNCHECKED_HASH = (1).to_bytes(4, "little")


def bytecode(source: bytes, name: str) -> bytes | None:
    """The .pyc of a source file, or None when this Python cannot compile it (a file for another version)."""
    try:
        code = compile(source, name, "exec", dont_inherit=True)
    except SyntaxError:
        return None
    return importlib.util.MAGIC_NUMBER + UNCHECKED_HASH + importlib.util.source_hash(source) + marshal.dumps(code)


def write_zip(out: str, members: dict[str, bytes], compiled: set[str] | None) -> None:
    """Writes `members` and the bytecode of their `.py` files (of those in `compiled`, when it is given)."""
    for name, data in list(members.items()):
        if name.endswith(".py") and (compiled is None or name in compiled):
            pyc = bytecode(data, name)
            if pyc is not None:
                members[name + "c"] = pyc
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    with zipfile.ZipFile(out + ".partial", "w", zipfile.ZIP_STORED) as archive:
        for name in sorted(members):
            archive.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), members[name])
    os.replace(out + ".partial", out)


def layout() -> tuple[str, str, list[str]]:
    """(standard library, its zip, extension module directories) of the running interpreter, relative to its
    prefix, with `/` separators."""

    def relative(path: str) -> str:
        return os.path.relpath(path, sys.base_prefix).replace(os.sep, "/")

    stdlib = relative(sysconfig.get_path("stdlib"))
    zips = [relative(entry) for entry in sys.path if entry.endswith(".zip")]
    if len(zips) != 1:
        raise SystemExit(f"tool_environment.py: expected one zip on the default sys.path, found {zips} in {sys.path}")
    extensions = [relative(entry) for entry in sys.path if relative(entry).startswith(stdlib + "/")]
    return stdlib, zips[0], extensions


def write_interpreter(unpacked: str, out: str, compiled: set[str]) -> None:
    stdlib, zipped, extensions = layout()
    kept_in_stdlib = (f"{stdlib}/os.py", *(f"{directory}/" for directory in extensions))
    sources: dict[str, bytes] = {}
    for directory, _, files in os.walk(unpacked):
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
                shutil.copy(path, target)  # content and mode; a link's target (an archive's links are in-tree)
    write_zip(os.path.join(out, zipped), sources, compiled)


def wheel_members(wheels: list[str]) -> Iterator[tuple[str, bytes]]:
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            for info in archive.infolist():
                if not info.is_dir():
                    yield info.filename, archive.read(info)


def listed(path: str) -> set[str]:
    with open(path, encoding="utf-8") as f:
        return {line.strip() for line in f if line.strip() and not line.startswith("#")}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("unpacked", help="the unpacked runtime's python/ directory (this interpreter's)")
    parser.add_argument("out", help="the directory to write the interpreter into")
    parser.add_argument("compiled", help="the standard library files to compile, one per line")
    parser.add_argument("--dependencies", nargs="+", metavar=("ZIP", "WHEEL"), help="pure-Python wheels to zip")
    args = parser.parse_args(argv)
    if args.dependencies:
        members: dict[str, bytes] = {}
        for name, data in wheel_members(args.dependencies[1:]):
            if members.setdefault(name, data) != data:
                parser.error(f"two wheels have different files named {name}")
        write_zip(args.dependencies[0], members, None)
    write_interpreter(args.unpacked, args.out, listed(args.compiled))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
