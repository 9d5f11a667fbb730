"""A layer's requirements from files: `requirements.in`-style files, and pyproject.toml's `[project] dependencies` and
dependency groups (PEP 735). The lock verb reads them; the lock records each file's sha256, so that building a
layer whose file changed since it was locked fails naming the lock target."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from stacktool.errors import UserError


class RequirementFileError(UserError):
    """A requirements file that cannot be read as this project reads them; the message names the file and the fix."""


def _requirements_txt(path: Path, name: str, listed: set[str]) -> list[str]:
    """PEP 508 lines of a requirements file; `-r` includes must be listed too (so that Bazel tracks them)."""
    requirements = []
    text = path.read_text(encoding="utf-8").replace("\\\n", "")
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        where = f"{name}:{number}"
        if line.startswith(("-r ", "--requirement ", "--requirement=")):
            include = line.split("=", 1)[1] if "=" in line.split()[0] else line.split(None, 1)[1]
            included = str(Path(name).parent / include.strip())
            if included not in listed:
                raise RequirementFileError(
                    f"{where} includes {include.strip()}: list {included} in the layer's `requirements_files` too, "
                    "so that Bazel knows when it changes"
                )
            continue  # read as a listed file of its own
        if line.startswith("-"):
            raise RequirementFileError(
                f"{where}: option {line.split()[0]!r} is not supported in requirements files; keep only "
                "requirements (and -r includes) there (indexes are set per stack, issue #11)"
            )
        requirements.append(line)
    return requirements


def _group(groups: dict[str, Any], name: str, where: str, seen: tuple[str, ...] = ()) -> list[str]:
    """A dependency group's requirements, `{include-group = ...}` expanded (PEP 735)."""
    if name not in groups:
        raise RequirementFileError(f"{where} has no dependency group {name!r} (it has: {', '.join(groups) or 'none'})")
    if name in seen:
        raise RequirementFileError(f"{where}: dependency group {name!r} includes itself")
    requirements = []
    for item in groups[name]:
        if isinstance(item, dict):
            requirements += _group(groups, str(item["include-group"]), where, (*seen, name))
        else:
            requirements.append(str(item))
    return requirements


def _pyproject(path: Path, name: str, groups: tuple[str, ...]) -> list[str]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    requirements = [str(r) for r in data.get("project", {}).get("dependencies", [])]
    for group in groups:
        requirements += _group(data.get("dependency-groups", {}), group, name)
    return requirements


def read_requirement_files(workspace: Path, files: tuple[str, ...], groups: tuple[str, ...]) -> list[str]:
    """The requirements of `files` (workspace-relative paths): pyproject.toml's dependencies and `groups`, the lines
    of the others."""
    requirements = []
    for name in files:
        path = workspace / name
        if not path.is_file():
            raise RequirementFileError(f"{name} does not exist in the workspace")
        if path.name == "pyproject.toml":
            requirements += _pyproject(path, name, groups)
        else:
            requirements += _requirements_txt(path, name, set(files))
    return requirements
