"""Writes a zip of Python sources with their bytecode, for the helper tool's interpreter to import from.

    python -S -E -s -B bytecode_zip.py OUT.zip --wheel WHEEL...

Every member of the wheels, bytecode for every `.py`: the tool's pure-Python dependencies, one file on sys.path
instead of a wheel each, imported without compiling them in every action. python/tool_interpreter.py writes the
tool interpreter's standard library zip with `write`.

Bytecode is an unchecked hash-based .pyc (PEP 552) beside its source (`x.py` + `x.pyc`, the layout zipimport
reads): it is never compared with its source, so it needs no time stamps. Members are sorted, stored and dated
1980-01-01, so the same inputs give the same bytes. Standard library only: it builds the tool's imports. Written
here rather than with `compileall`/`py_compile`, which write `__pycache__` files that zipimport does not read.
"""

from __future__ import annotations

import argparse
import importlib.util
import marshal
import os
import sys
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


def wheel_members(wheels: list[str]) -> Iterator[tuple[str, bytes]]:
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            for info in archive.infolist():
                if not info.is_dir():
                    yield info.filename, archive.read(info)


def write(out: str, members: dict[str, bytes], compiled: set[str] | None) -> None:
    """Writes `members` and the bytecode of their `.py` files (of those in `compiled`, when it is given)."""
    for name, data in list(members.items()):
        if name.endswith(".py") and (compiled is None or name in compiled):
            pyc = bytecode(data, name)
            if pyc is not None:
                members[name + "c"] = pyc
    with zipfile.ZipFile(out + ".partial", "w", zipfile.ZIP_STORED) as archive:
        for name in sorted(members):
            archive.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), members[name])
    os.replace(out + ".partial", out)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--wheel", nargs="+", required=True, help="pure-Python wheels")
    args = parser.parse_args(argv)
    members: dict[str, bytes] = {}
    for name, data in wheel_members(args.wheel):
        if members.setdefault(name, data) != data:
            parser.error(f"two wheels have different files named {name}")
    write(args.out, members, None)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
