"""The lock verb: resolve every layer of a stack with uv, per target platform, lower layers as constraints.

Writes, into the BUILD package of the lock target, one PEP 751 `pylock.<env>.toml` per layer and the JSON index
the module extension reads (Starlark cannot parse TOML). Nothing is written unless every layer locks.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from stacktool.contract import LayerSpec, StackSpec
from stacktool.errors import UserError
from stacktool.platforms import Platform
from stacktool.pylock import LayerLock, LockedPackage, read_uv_lock, render_layer_lock, render_uv_preferences
from stacktool.wheel_choice import NoWheelError, WheelFile, choose_wheel

INDEX_VERSION = 1


class LockError(UserError):
    """Locking failed; the message names the layer, the platform and the fix."""


@dataclass(frozen=True)
class Resolver:
    """How to run uv: its binary, an interpreter for it to query, and the user's extra arguments."""

    uv: Path
    python: Path
    extra_args: tuple[str, ...] = ()

    def compile(
        self, layer: LayerSpec, platform: Platform, constraints: list[str], previous: str
    ) -> list[LockedPackage]:
        with tempfile.TemporaryDirectory(prefix="venvstacks-lock-") as tmp:
            work = Path(tmp)
            (work / "requirements.in").write_text("".join(r + "\n" for r in layer.requirements), encoding="utf-8")
            (work / "constraints.txt").write_text("".join(c + "\n" for c in constraints), encoding="utf-8")
            output = work / "pylock.layer.toml"
            if previous:
                output.write_text(previous, encoding="utf-8")  # uv prefers the versions of an existing output
            target = layer.target()
            cmd = [
                str(self.uv), "pip", "compile", "requirements.in", "--constraints", "constraints.txt",
                "--output-file", output.name, "--python-platform", platform.uv_python_platform(target),
                "--python-version", layer.python, "--python", str(self.python), "--no-build", "--no-header",
                "--quiet", "--no-config", "--no-python-downloads", *self.extra_args,
            ]  # fmt: skip
            env = dict(os.environ, MACOSX_DEPLOYMENT_TARGET=target.macos_version, UV_PYTHON_DOWNLOADS="never")
            result = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise LockError(
                    f"{layer.label} ({platform.name}): uv could not resolve the layer's requirements:\n"
                    f"{result.stderr.strip()}\n"
                    f"Fix the `requirements` of {layer.label} (or narrow its `platforms`), then lock again."
                )
            return read_uv_lock(output, platform, layer.python)


def _check_lower_pins(layer: LayerSpec, platform: Platform, pins: dict[str, tuple[str, str]]) -> None:
    """A requirement of this layer that contradicts a version a lower layer pinned is the user's to fix."""
    environment = platform.marker_environment(layer.python)
    requirement: Requirement
    for requirement in layer.parsed_requirements():
        name = canonicalize_name(requirement.name)
        if name not in pins or (requirement.marker and not requirement.marker.evaluate(environment)):
            continue
        version, provider = pins[name]
        if not requirement.specifier.contains(version, prereleases=True):
            raise LockError(
                f"{layer.label}: requirement {str(requirement)!r} conflicts with {name}=={version}, which lower "
                f"layer {provider} provides on {platform.name}; change the requirement (or the lower layer's) "
                "so they agree, then lock again"
            )


def _previous_choice(previous_index: dict[str, Any], layer: LayerSpec, platform: Platform) -> str:
    """The versions locked before for this layer and platform, as a uv output file ("" when none)."""
    entries = previous_index.get("layers", {}).get(layer.key, {}).get("wheels", {}).get(platform.name, [])
    if not entries:
        return ""
    return render_uv_preferences(
        (e["name"], e["version"], WheelFile(e["filename"], e["url"], e["sha256"], e.get("size"))) for e in entries
    )


def _layer_entry(layer: LayerSpec, pylock_name: str, pylock_text: str, lock: LayerLock) -> dict[str, Any]:
    return {
        "inputs": layer.inputs,
        "pylock": pylock_name,
        "pylock_sha256": hashlib.sha256(pylock_text.encode()).hexdigest(),
        "wheels": {
            platform: [
                {
                    "name": name,
                    "version": version,
                    "filename": wheel.filename,
                    "url": wheel.url,
                    "sha256": wheel.sha256,
                    "size": wheel.size,
                }
                for name, version, wheel in chosen
            ]
            for platform, chosen in sorted(lock.chosen.items())
        },
    }


def lock_stack(stack: StackSpec, resolver: Resolver, previous_index: dict[str, Any]) -> dict[str, str]:
    """Locks every layer; returns file name -> content for the lock files and the index."""
    # Per layer and platform: canonical name -> (version, env name of the layer that installs it).
    provided: dict[str, dict[str, dict[str, tuple[str, str]]]] = {}
    files: dict[str, str] = {}
    index: dict[str, Any] = {"version": INDEX_VERSION, "lock": stack.lock, "layers": {}}
    for layer in stack.layers:
        platforms = layer.target_platforms()
        target = layer.target()
        provided[layer.key] = {}
        chosen: dict[str, list[tuple[str, str, WheelFile]]] = {}
        for platform in platforms:
            pins: dict[str, tuple[str, str]] = {}
            for lower in reversed(layer.lower):  # nearer layers win, as on sys.path
                pins.update(provided[lower].get(platform.name, {}))
            _check_lower_pins(layer, platform, pins)
            constraints = sorted(f"{name}=={version}" for name, (version, _) in pins.items())
            resolved = (
                resolver.compile(layer, platform, constraints, _previous_choice(previous_index, layer, platform))
                if layer.requirements
                else []
            )
            own = []
            for package in resolved:
                if package.name in pins:
                    continue
                try:
                    wheel = choose_wheel(package.name, list(package.wheels), platform, layer.python, target)
                except NoWheelError as error:
                    raise LockError(
                        f"{layer.label}: {error}. Pin a version that has such a wheel, raise the layer's "
                        "linux_target/macosx_target, or drop the platform from its `platforms`."
                    ) from None
                own.append((package.name, package.version, wheel))
            chosen[platform.name] = sorted(own, key=lambda item: item[0])
            provided[layer.key][platform.name] = {name: (version, layer.env_name) for name, version, _ in own}
            provided[layer.key][platform.name] |= pins
        lower_names = tuple(stack.layer(key).env_name for key in layer.lower)
        lock = LayerLock(layer.label, layer.env_name, layer.python, tuple(platforms), lower_names, chosen)
        pylock_name = layer.pylock
        files[pylock_name] = render_layer_lock(lock)
        index["layers"][layer.key] = _layer_entry(layer, pylock_name, files[pylock_name], lock)
    return files | {"index": json.dumps(index, indent=1, sort_keys=True) + "\n"}


def write_lock_files(out_dir: Path, index_name: str, files: dict[str, str], previous_index: dict[str, Any]) -> None:
    """Replaces only files whose content changed, then removes lock files of layers no longer locked."""
    contents = {index_name if name == "index" else name: text for name, text in files.items()}
    for name, text in sorted(contents.items()):
        path = out_dir / name
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        partial = path.with_name(path.name + ".partial")
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
    for entry in previous_index.get("layers", {}).values():
        stale = out_dir / entry["pylock"]
        if entry["pylock"] not in contents and stale.exists():
            stale.unlink()


def read_previous_index(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return {}  # a broken index is replaced; it only served as version preferences
    return data
