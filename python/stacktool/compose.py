"""The compose verb: one layer's tree from its wheels' installed trees (and, for a runtime layer, its
python-build-standalone archive), plus the files that chain it to its lower layers.

Files are hard-linked from the wheels' trees (each wheel was extracted once, by its own install action), relative
symlinks inside a tree stay symlinks, and two inputs that would write different content to one path are an error.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stacktool.errors import UserError
from stacktool.install import unpack_runtime
from stacktool.layout import Layout
from stacktool.link import (
    DYNLIB_DIR,
    INJECTED,
    LAYER_CONFIG,
    layers_path_files,
    python_wrapper,
    shared_libraries,
    windows_venv_launchers,
)
from stacktool.platforms import platform
from stacktool.staging import unstaged


class ComposeError(UserError):
    """Inputs that do not fit together into one layer; the message names them."""


@dataclass
class Composer:
    """Fills `out`, remembering which input wrote each path (for conflict messages)."""

    out: Path
    owners: dict[str, str]

    def add_tree(self, tree: Path, owner: str) -> None:
        for relative, path in _entries(tree):
            self.add_file(relative, path, owner)

    def adopt(self, owner: str) -> None:
        """Records what is already in `out` (an unpacked runtime) as written by `owner`."""
        for relative, _ in _entries(self.out):
            self.owners[relative] = owner

    def add_file(self, relative: str, source: Path, owner: str) -> None:
        real = unstaged(source)
        link_target = os.readlink(real) if real.is_symlink() else None  # a relative link of the tree itself
        if relative in self.owners and link_target is None and _same_content(self.out / relative, source):
            return  # e.g. a namespace package's identical __init__.py in two wheels
        dest = self._claim(relative, owner)
        if link_target is not None:
            dest.symlink_to(link_target)
            return
        try:
            os.link(real, dest)
        except OSError:
            shutil.copyfile(real, dest)  # another file system (e.g. an input from the source tree)

    def add_bytes(self, relative: str, data: bytes, owner: str) -> None:
        self._claim(relative, owner).write_bytes(data)

    def add_symlink(self, relative: str, target: str, owner: str) -> None:
        self._claim(relative, owner).symlink_to(target)

    def _claim(self, relative: str, owner: str) -> Path:
        """The destination of `relative`, recorded as `owner`'s; an error when another input wrote it."""
        if relative in self.owners:
            raise ComposeError(f"{owner} and {self.owners[relative]} both install {relative}")
        self.owners[relative] = owner
        dest = self.out / relative
        dest.parent.mkdir(parents=True, exist_ok=True)
        return dest


def _entries(tree: Path) -> list[tuple[str, Path]]:
    """(path relative to `tree`, path) of every file and symlink in `tree`, sorted."""
    found = []
    for directory, dirnames, files in os.walk(tree):
        for name in files + [d for d in dirnames if (Path(directory) / d).is_symlink()]:
            path = Path(directory) / name
            found.append((path.relative_to(tree).as_posix(), path))
    return sorted(found)


def _same_content(a: Path, b: Path) -> bool:
    return a.is_file() and a.stat().st_size == b.stat().st_size and a.read_bytes() == b.read_bytes()


def recorded_symlinks(tree: Path) -> dict[str, str]:
    """Every symlink of a composed tree: relative path -> target. Pack archives these as symlinks, because a tree
    artifact may reach it with its symlinks dereferenced (remote execution, building without the bytes)."""
    return {relative: os.readlink(path) for relative, path in _entries(tree) if path.is_symlink()}


def import_names(tree: Path, layout: Layout) -> list[str]:
    """Top-level modules and packages a wheel's tree provides (from its RECORD), for import checks."""
    site = tree / layout.site_packages
    names: set[str] = set()
    for record in site.glob("*.dist-info/RECORD"):
        for line in record.read_text(encoding="utf-8").splitlines():
            path = line.split(",", 1)[0]
            first, _, rest = path.partition("/")
            if rest:  # a directory: a package when its name is an identifier (not `x.libs`, `x.dist-info`)
                name = first
            elif first.endswith((".py", ".so", ".pyd")):  # a module, possibly an extension `x.cpython-311-....so`
                name = first.split(".", 1)[0]
            else:
                continue
            if name.isidentifier() and name != "__pycache__" and (site / first).exists():
                names.add(name)
    return sorted(names)


def _venv_launchers(runtime_archive: Path) -> dict[str, bytes]:
    """The venv launcher executables of a Windows runtime archive, by their place in the layer."""
    wanted = windows_venv_launchers()
    found: dict[str, bytes] = {}
    with tarfile.open(runtime_archive) as tar:
        members = {m.name: m for m in tar.getmembers() if m.isfile()}
        for relative, candidates in wanted.items():
            member = next((members[c] for c in candidates if c in members), None)
            if member is None:
                raise ComposeError(
                    f"{runtime_archive.name} has no Windows venv launcher ({' or '.join(candidates)}); "
                    "is it a python-build-standalone install_only archive for Windows?"
                )
            extracted = tar.extractfile(member)
            assert extracted is not None
            found[relative] = extracted.read()
    return found


def compose(config: dict[str, Any], out: Path) -> None:
    """Builds the layer described by `config` (written by rules/private/layer.bzl) in the empty dir `out`."""
    target = platform(config["platform"])
    layout = Layout(config["python"], target.is_windows)
    composer = Composer(out, {})
    env_name: str = config["env_name"]
    if config["kind"] == "runtime":
        unpack_runtime(Path(config["runtime_archive"]), out, layout)
        composer.adopt(f"runtime archive of {env_name}")
    packages = []
    for wheel in config["wheels"]:
        tree = Path(wheel["tree"])
        composer.add_tree(tree, wheel["filename"])
        packages.append(
            {"name": wheel["name"], "version": wheel["version"], "import_names": import_names(tree, layout)}
        )
    for module in config["modules"]:
        composer.add_file(f"{layout.site_packages}/{module['dest']}", Path(module["src"]), module["src"])
    generated = f"rules_venvstacks ({env_name})"
    lower: list[str] = config["lower"]
    if config["kind"] != "runtime":
        for relative, data in layers_path_files(layout, lower).items():
            composer.add_bytes(relative, data, generated)
        if layout.windows:
            for relative, data in _venv_launchers(Path(config["runtime_archive"])).items():
                composer.add_bytes(relative, data, generated)
        else:
            library_path = "DYLD_LIBRARY_PATH" if target.os == "macos" else "LD_LIBRARY_PATH"
            composer.add_bytes("bin/python", python_wrapper(library_path).encode(), generated)
            for alias in ("python3", f"python{layout.python}"):
                composer.add_symlink(f"bin/{alias}", "python", generated)
            for name, path in shared_libraries(out, layout, config["dynlib_exclude"]).items():
                composer.add_symlink(f"{DYNLIB_DIR}/{name}", os.path.relpath(path, DYNLIB_DIR), generated)
    layer_config = {
        "env_name": env_name,
        "kind": config["kind"],
        "python": layout.python,
        "platform": config["platform"],
        "windows": layout.windows,
        "runtime": config["runtime"],
        "lower": lower,
        "launch_module": config["launch_module"],
        "packages": packages,
    }
    composer.add_bytes(LAYER_CONFIG, (json.dumps(layer_config, indent=1, sort_keys=True) + "\n").encode(), generated)
    composer.add_bytes("postinstall.py", (INJECTED / "postinstall.py").read_bytes(), generated)
