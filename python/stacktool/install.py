"""Installing: one wheel into a tree of its own (the install-wheel verb), and the files of one python-build-standalone
archive, read into memory for its runtime layer.

Each tree uses the final layout of a layer (`lib/pythonX.Y/site-packages`, `bin`, ... or the Windows
equivalents), so composing a layer is linking trees together, and the tree of a wheel is the same for every
layer, stack and configuration that installs that wheel for that layout.
"""

from __future__ import annotations

import csv
import io
import os
import posixpath
import re
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.records import InvalidRecordEntry, RecordEntry, parse_record_file
from installer.scripts import Script
from installer.sources import WheelFile
from installer.utils import Scheme

from stacktool.archive import Member, read_members
from stacktool.errors import UserError
from stacktool.layout import Layout

# A shell/Python polyglot: /bin/sh execs the `python` next to the (symlink-resolved) script, and Python reads the
# second and third lines as a string literal. Relocatable: no absolute path of the build or the deployment.
POSIX_SCRIPT_HEADER = b"""#!/bin/sh
'''exec' "$(dirname -- "$(realpath -- "$0")")/python" "$0" "$@"
' '''
"""
WINDOWS_LAUNCHER_KIND = {"x86_64": "win-amd64", "aarch64": "win-arm64"}


class InstallError(UserError):
    """A wheel or runtime archive that cannot be installed; the message names the file."""


class RelocatableDestination(SchemeDictionaryDestination):
    """installer's destination, with console scripts that find the layer's python relative to themselves, and
    Windows launchers whose bytes do not depend on when or where they were made."""

    def write_script(self, name: str, module: str, attr: str, section: str) -> RecordEntry:
        script = Script(name, module, attr, section)  # type: ignore[arg-type]
        if self.script_kind == "posix":
            script_name, code = script.generate("python", "posix")
            data = POSIX_SCRIPT_HEADER + code.split(b"\n", 1)[1]
        else:
            script_name, launcher = script.generate(self.interpreter, self.script_kind)
            data = _dated_1980(launcher)
        with io.BytesIO(data) as stream:
            return self.write_to_fs(Scheme("scripts"), script_name, stream, is_executable=True)

    def write_file(
        self, scheme: Scheme, path: str | os.PathLike[str], stream: BinaryIO, is_executable: bool
    ) -> RecordEntry:
        if scheme == "scripts" and self.script_kind == "posix":
            data = stream.read()
            if data.startswith(b"#!python"):  # a script shipped in the wheel's .data/scripts
                data = POSIX_SCRIPT_HEADER + data.split(b"\n", 1)[1]
            with io.BytesIO(data) as rewritten:
                return self.write_to_fs(scheme, os.fspath(path), rewritten, is_executable)
        return super().write_file(scheme, path, stream, is_executable)


def _dated_1980(launcher: bytes) -> bytes:
    """installer's Windows launcher (an .exe with the script appended as a zip) with the zip's entries dated
    1980-01-01 and marked as made on Unix: zipfile dates an entry written by name with the time it is written, and
    marks it with the OS it runs on."""
    with zipfile.ZipFile(io.BytesIO(launcher)) as appended:
        start = min(info.header_offset for info in appended.infolist())  # where the zip begins in the .exe
        entries = [(info.filename, appended.read(info)) for info in appended.infolist()]
    rewritten = io.BytesIO()
    with zipfile.ZipFile(rewritten, "w") as zf:
        for filename, content in entries:
            info = zipfile.ZipInfo(filename, date_time=(1980, 1, 1, 0, 0, 0))
            info.create_system, info.external_attr = 3, 0o644 << 16
            zf.writestr(info, content)
    return launcher[:start] + rewritten.getvalue()


class TolerantWheelFile(WheelFile):
    """A wheel whose RECORD may have malformed rows (MLX 0.29's Linux wheels list a hash without its `sha256=`).

    uv, pip and venvstacks install such wheels; so does this, warning: a malformed hash or size is dropped (that
    file's hash is then not checked: the wheel file itself was verified by its sha256 from the lock), and a row
    that cannot be parsed at all is left out (its file is still installed, like any file RECORD does not list).
    What is unsafe (a path outside the layer) is still refused by installer's destination.
    """

    def read_dist_info(self, filename: str) -> str:
        text = super().read_dist_info(filename)
        if filename != "RECORD":
            return text
        rows = io.StringIO()
        writer = csv.writer(rows, lineterminator="\n")
        for line in filter(None, text.splitlines()):
            try:
                ((path, digest, size),) = parse_record_file([line])
            except InvalidRecordEntry:
                self._warn(f"RECORD row {line!r} cannot be parsed; left out")
                continue
            try:
                RecordEntry.from_elements(path, digest, size)
            except InvalidRecordEntry as error:
                self._warn(f"RECORD entry for {path} is malformed ({'; '.join(error.issues)}); its hash is not checked")
                digest, size = "", ""
            writer.writerow((path, digest, size))
        return rows.getvalue()

    def _warn(self, message: str) -> None:
        print(f"warning: {Path(self._zipfile.filename or '').name}: {message}", file=sys.stderr)


def install_wheel(wheel: Path, out: Path, layout: Layout, arch: str) -> None:
    """Installs `wheel` into the empty directory `out` with the layer layout `layout`."""
    distribution = re.sub(r"[-_.]+", "_", wheel.name.split("-", 1)[0])
    schemes = {
        "purelib": layout.site_packages,
        "platlib": layout.site_packages,
        "headers": layout.headers(distribution),
        "scripts": layout.scripts,
        "data": ".",
    }
    destination = RelocatableDestination(
        scheme_dict={key: str(out / value) for key, value in schemes.items()},
        interpreter="python.exe" if layout.windows else "python",
        script_kind=WINDOWS_LAUNCHER_KIND[arch] if layout.windows else "posix",  # type: ignore[arg-type]
    )
    try:
        with TolerantWheelFile.open(wheel) as source:
            install(source, destination, additional_metadata={"INSTALLER": b"rules_venvstacks\n"})
    except Exception as error:  # installer raises plain exceptions for broken wheels
        raise InstallError(f"cannot install {wheel.name}: {error}") from error


def runtime_members(archive: Path, layout: Layout) -> dict[str, Member]:
    """The files of a python-build-standalone `install_only` archive (everything under `python/`), in memory by path
    below `python/`, installer tooling stripped (see `strip_installer_tooling`)."""
    members = read_members(archive, top="python")
    if members.get(layout.runtime_python, Member("dir")).kind == "dir":
        scripts = "" if layout.windows else "bin/"
        found = sorted(
            rel[len(scripts) :]
            for rel in members
            if rel.startswith(scripts + "python") and "/" not in rel[len(scripts) :]
        )
        raise InstallError(
            f"{archive.name} is not a CPython {layout.python} install_only archive for this platform: "
            f"{layout.runtime_python} is missing (found {', '.join(found) or 'no interpreter'})"
        )
    strip_installer_tooling(members, layout)
    return members


# What venvstacks removes from a published runtime: the installer tooling (layers are installed at build time, and a
# deployed stack must not be changed underneath its lock) and every script but the interpreter's own.
INSTALLER_TOOLING = ("pip", "setuptools", "wheel")


def strip_installer_tooling(members: dict[str, Member], layout: Layout) -> None:
    """Removes pip, setuptools and wheel (by their RECORD), the scripts not named python*, and the directories below
    site-packages left without a file, from the runtime `members` (by path in the runtime)."""
    site = layout.site_packages
    for rel in list(members):  # every directory explicit, as on disk: removing what is in one leaves it
        for parent in _parents(rel):
            members.setdefault(parent, Member("dir"))

    def remove(path: str) -> None:  # and everything below it
        for rel in [rel for rel in members if rel == path or rel.startswith(path + "/")]:
            del members[rel]

    for rel, member in sorted(members.items()):
        parent, _, name = rel.rpartition("/")
        if parent.rpartition("/")[0] != site or name != "RECORD" or not parent.endswith(".dist-info"):
            continue
        if parent.rpartition("/")[2].split("-")[0].lower() not in INSTALLER_TOOLING:
            continue
        for path, _, _ in parse_record_file(member.content().decode("utf-8").splitlines()):
            target = posixpath.normpath(f"{site}/{path}")
            if target in members and members[target].kind != "dir":
                del members[target]
        remove(parent)
    scripts = layout.scripts + "/"
    for name in sorted(
        {rel[len(scripts) :] for rel in members if rel.startswith(scripts) and "/" not in rel[len(scripts) :]}
    ):
        if not name.lower().startswith("python"):
            remove(scripts + name)
    holding = {parent for rel, m in members.items() if m.kind != "dir" for parent in _parents(rel)}
    for rel in [rel for rel, m in members.items() if m.kind == "dir" and rel.startswith(site + "/")]:
        if rel not in holding:
            del members[rel]


def _parents(rel: str) -> Iterator[str]:
    """The directories that hold `rel`: `a`, `a/b` for `a/b/c`."""
    parts = rel.split("/")
    return ("/".join(parts[:depth]) for depth in range(1, len(parts)))
