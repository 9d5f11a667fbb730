"""Launch and support modules of imported applications: found relative to the spec file (as venvstacks resolves
them), named as venvstacks names them, and copied into the Bazel package unless they are there already.

A module inside the spec's directory keeps its relative path in the package (`launch_modules/app.py`); one outside
it (`../shared/util.py`) goes to the package's top directory. A package directory is copied without `__pycache__`,
`.pyc` files and `.git*` entries, and files the source no longer has are removed from the copy.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Report = Callable[[str, str], None]  # (where, message)


@dataclass(frozen=True)
class ModuleRef:
    written: str  # the path as the spec writes it
    source: Path  # the spec's directory / written
    name: str  # the module's name: the file's name without .py, or the directory's name
    is_package: bool
    dest: str  # where it is in the Bazel package (a path relative to the package, with /)

    @property
    def target_name(self) -> str:
        """The filegroup of a package directory."""
        return re.sub(r"[^A-Za-z0-9_]", "_", self.dest)


def application_modules(
    raw: dict[str, Any], where: str, spec_dir: Path, error: Report
) -> tuple[ModuleRef | None, tuple[ModuleRef, ...]]:
    """(launch module, support modules) of an application; support modules sorted as venvstacks sorts them."""
    launch_text = raw.get("launch_module")
    if not isinstance(launch_text, str):
        error(where, "key 'launch_module' is missing or not a path (venvstacks requires it); add it")
        launch_text = None
    support_texts = raw.get("support_modules", [])
    if not isinstance(support_texts, list) or not all(isinstance(t, str) for t in support_texts):
        error(where, f"key 'support_modules' must be a list of paths, not {support_texts!r}")
        support_texts = []
    launch = _module(spec_dir, launch_text, where, "launch_module", error) if launch_text else None
    found = [_module(spec_dir, text, where, "support_modules", error) for text in sorted(support_texts)]
    support = tuple(m for m in found if m)
    names = [m.name for m in support]
    if launch and launch.name in names:
        error(
            where,
            f"launch module {launch.name!r} has the name of a support module (as venvstacks, refused); rename one",
        )
    if len(set(names)) < len(names):
        error(where, "two support modules have one name (as venvstacks, refused); rename one")
    return launch, support


def _module(spec_dir: Path, text: str, where: str, key: str, error: Report) -> ModuleRef | None:
    source = spec_dir / text
    shown = f"key {key!r}: {text!r}"
    if not source.exists():
        error(where, f"{shown} does not exist ({source}; paths are relative to the spec file); fix the path")
        return None
    is_package = source.is_dir()
    name = source.name if is_package else source.stem
    if not is_package and source.suffix != ".py":
        error(where, f"{shown} is not a .py file or a package directory; point it at the module's .py file")
        return None
    if is_package and not (source / "__init__.py").is_file():
        error(where, f"{shown} is a directory without __init__.py; add one (package directories need it here)")
        return None
    if not name.isidentifier():
        error(where, f"{shown} cannot be imported: {name!r} is not a Python module name; rename it")
        return None
    normal = os.path.normpath(text)
    if normal == "." or spec_dir.resolve().is_relative_to(source.resolve()):
        error(where, f"{shown} is the spec's own directory (or holds it); point it at the module itself")
        return None
    inside = not os.path.isabs(normal) and normal.split(os.sep)[0] != ".."
    dest = Path(normal).as_posix() if inside else source.name
    return ModuleRef(text, source, name, is_package, dest)


def _skipped(name: str) -> bool:
    return name == "__pycache__" or name.startswith(".git") or name.endswith((".pyc", ".pyo"))


def _tree(root: Path) -> dict[str, Path]:
    """relative path (with /) -> file, of a package directory, without what is never copied."""
    found: dict[str, Path] = {}
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not _skipped(d))
        for name in sorted(files):
            if not _skipped(name):
                path = Path(directory, name)
                found[path.relative_to(root).as_posix()] = path
    return found


def plan_copies(modules: list[ModuleRef], package_dir: Path, error: Report) -> dict[Path, bytes | None]:
    """The files to write (content) or remove (None) so that every module is in the package as it is in the spec."""
    by_dest: dict[str, ModuleRef] = {}
    plan: dict[Path, bytes | None] = {}
    for module in modules:
        where = f"module {module.written!r}"
        other = by_dest.setdefault(module.dest, module)
        if other.source.resolve() != module.source.resolve():
            error(where, f"goes to {module.dest} in the package, as {other.written!r} does; rename one of them")
            continue
        target = package_dir / module.dest
        if other is not module or (target.exists() and target.resolve() == module.source.resolve()):
            continue  # the same module twice, or already in the package
        for parent in Path(module.dest).parents:
            if parent != Path(".") and any((package_dir / parent / b).exists() for b in ("BUILD", "BUILD.bazel")):
                error(where, f"would go to {module.dest}, below another Bazel package ({parent}); move or rename it")
        wanted = (
            {target / rel: path for rel, path in _tree(module.source).items()}
            if module.is_package
            else {target: module.source}
        )
        if any(p.name in ("BUILD", "BUILD.bazel") for p in wanted):
            error(where, "holds a BUILD file, which would hide its files from the package's glob; remove it")
        for path, source in wanted.items():
            content = source.read_bytes()
            if not path.is_file() or path.read_bytes() != content:
                plan[path] = content
        if module.is_package and target.is_dir():
            plan.update({target / rel: None for rel in _tree(target) if target / rel not in wanted})
    return plan
