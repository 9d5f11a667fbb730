"""Reading uv's PEP 751 output and writing the per-layer `pylock.<env>.toml` files."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from packaging.markers import Marker
from packaging.utils import canonicalize_name

from stacktool.platforms import Platform
from stacktool.wheel_choice import WheelFile


@dataclass(frozen=True)
class LockedPackage:
    """One package version as uv resolved it for one platform, with the wheels uv listed."""

    name: str  # canonical name
    version: str
    wheels: tuple[WheelFile, ...]


def read_uv_lock(path: Path, platform: Platform, python: str) -> list[LockedPackage]:
    """The packages of a uv `pip compile` pylock that apply on `platform` (uv keeps requirement markers)."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    environment = platform.marker_environment(python)
    packages = []
    for entry in data.get("packages", []):
        marker = entry.get("marker")
        if marker and not Marker(marker).evaluate(environment):
            continue
        wheels = tuple(
            WheelFile(
                filename=wheel.get("name") or unquote(wheel["url"].rsplit("/", 1)[-1]),  # `+` arrives as %2B
                url=wheel["url"],
                sha256=wheel["hashes"]["sha256"],
                size=wheel.get("size"),
            )
            for wheel in entry.get("wheels", [])
        )
        packages.append(LockedPackage(canonicalize_name(entry["name"]), entry["version"], wheels))
    return packages


def _toml_string(value: str) -> str:
    # JSON string escapes are valid TOML basic-string escapes.
    return json.dumps(value, ensure_ascii=False)


def _toml_array(values: Iterable[str]) -> str:
    return "[" + ", ".join(_toml_string(v) for v in values) + "]"


def _wheel_line(wheel: WheelFile) -> str:
    """A wheel of a package entry: a wheel of a local directory or a mirror has no URL (no path of the machine that
    locked it); [tool.rules_venvstacks] names each package's index."""
    url = f", url = {_toml_string(wheel.url)}" if wheel.url else ""
    size = f", size = {wheel.size}" if wheel.size is not None else ""
    digest = f"hashes = {{ sha256 = {_toml_string(wheel.sha256)} }}"
    return f"  {{ name = {_toml_string(wheel.filename)}{url}{size}, {digest} }},"


def render_uv_preferences(packages: Iterable[tuple[str, str]]) -> str:
    """A minimal pylock uv reads as `-o` file, so that relocking prefers the versions locked before."""
    lines = ['lock-version = "1.0"', 'created-by = "rules_venvstacks"']
    for name, version in packages:
        lines += ["", "[[packages]]", f"name = {_toml_string(name)}", f"version = {_toml_string(version)}"]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class LayerLock:
    """What one layer installs on each of its platforms (packages of lower layers left out)."""

    label: str
    env_name: str
    python: str
    platforms: tuple[Platform, ...]
    lower_env_names: tuple[str, ...]
    chosen: dict[str, list[tuple[str, str, WheelFile]]]  # platform name -> [(name, version, wheel)], sorted


def render_layer_lock(lock: LayerLock) -> str:
    """The layer's PEP 751 lock: one entry per package version, with a marker when not on every platform."""
    where: dict[tuple[str, str], list[Platform]] = {}
    wheels: dict[tuple[str, str], set[WheelFile]] = {}
    for platform in lock.platforms:
        for name, version, wheel in lock.chosen[platform.name]:
            where.setdefault((name, version), []).append(platform)
            wheels.setdefault((name, version), set()).add(wheel)
    lines = [
        f"# Lock of layer {lock.env_name} ({lock.label}), written by rules_venvstacks' lock target: do not edit.",
        'lock-version = "1.0"',
        f"environments = {_toml_array(p.marker for p in lock.platforms)}",
        f'requires-python = "=={lock.python}.*"',
        'created-by = "rules_venvstacks"',
    ]
    for name, version in sorted(where):
        lines += ["", "[[packages]]", f"name = {_toml_string(name)}", f"version = {_toml_string(version)}"]
        if len(where[name, version]) != len(lock.platforms):
            marker = " or ".join(f"({p.marker})" for p in where[name, version])
            lines.append(f"marker = {_toml_string(marker)}")
        lines.append("wheels = [")
        lines += [_wheel_line(w) for w in sorted(wheels[name, version], key=lambda w: w.filename)]
        lines.append("]")
        indexes = sorted({w.index for w in wheels[name, version] if w.index})
        if indexes:
            lines += ["", "[packages.tool.rules_venvstacks]", f"index = {_toml_string(', '.join(indexes))}"]
    lines += ["", "[tool.rules_venvstacks]", f"layer = {_toml_string(lock.label)}"]
    lines.append(f"lower-layers = {_toml_array(lock.lower_env_names)}")
    return "\n".join(lines) + "\n"
