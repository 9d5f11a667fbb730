"""The lock verb: resolve every layer of a stack with uv, per target platform, lower layers as constraints.

Writes, into the BUILD package of the lock target, one PEP 751 `pylock.<env>.toml` per layer and the JSON index
the module extension reads (Starlark cannot parse TOML; schemas/lock-index.schema.json). Nothing is written unless
every layer locks. A layer's lock version moves when what it installs, its spec or the versions of the layers below
it change (versioned layers deploy as `<env_name>@<version>`, so old and new stacks deploy side by side).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from stacktool.contract import LayerSpec, StackSpec
from stacktool.digest import sha256_of
from stacktool.errors import UserError
from stacktool.package_indexes import IndexSet
from stacktool.platforms import Platform
from stacktool.pylock import LayerLock, LockedPackage, read_uv_lock, render_layer_lock, render_uv_preferences
from stacktool.requirement_files import read_requirement_files
from stacktool.wheel_choice import NoWheelError, WheelFile, choose_wheel

INDEX_SCHEMA = Path(__file__).resolve().parent / "schemas" / "lock-index.schema.json"


class LockError(UserError):
    """Locking failed; the message names the layer, the platform and the fix."""


@dataclass(frozen=True)
class Resolver:
    """How to run uv: its binary, an interpreter for it to query, and the user's extra arguments."""

    uv: Path
    python: Path
    indexes: IndexSet
    extra_args: tuple[str, ...] = ()
    exclude_newer: str = ""  # uv ignores releases after this time (stack_lock's `exclude_newer`)

    def compile(
        self, layer: LayerSpec, requirements: tuple[str, ...], platform: Platform, constraints: list[str], previous: str
    ) -> list[LockedPackage]:
        with tempfile.TemporaryDirectory(prefix="venvstacks-lock-") as tmp:
            work = Path(tmp)
            (work / "pyproject.toml").write_text(self.indexes.project(layer, requirements), encoding="utf-8")
            (work / "constraints.txt").write_text("".join(c + "\n" for c in constraints), encoding="utf-8")
            output = work / "pylock.layer.toml"
            if previous:
                output.write_text(previous, encoding="utf-8")  # uv prefers the versions of an existing output
            target = layer.target()
            cmd = [
                str(self.uv), "pip", "compile", "pyproject.toml", "--constraints", "constraints.txt",
                "--output-file", output.name, "--python-platform", platform.uv_python_platform(target),
                "--python-version", layer.python, "--python", str(self.python), "--no-build", "--no-header",
                "--quiet", "--no-config", "--no-python-downloads",
                *(["--exclude-newer", _iso(utc_time(self.exclude_newer))] if self.exclude_newer else []),
                *self.extra_args,
            ]  # fmt: skip
            env = dict(os.environ, MACOSX_DEPLOYMENT_TARGET=target.macos_version, UV_PYTHON_DOWNLOADS="never")
            result = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                uv_says = "".join(f"    | {line}\n" for line in result.stderr.strip().splitlines())
                raise LockError(
                    f"{layer.label} ({platform.name}): uv could not resolve the layer's requirements:\n"
                    f"{uv_says}"
                    f"Fix the `requirements` of {layer.label} (or narrow its `platforms`), then lock again."
                )
            return read_uv_lock(output, platform, layer.python)


def _check_lower_pins(
    layer: LayerSpec, from_files: tuple[str, ...], platform: Platform, pins: dict[str, tuple[str, str]]
) -> None:
    """A requirement of this layer that contradicts a version a lower layer pinned is the user's to fix."""
    environment = platform.marker_environment(layer.python)
    requirement: Requirement
    for requirement in layer.parsed_requirements(from_files):
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
    return render_uv_preferences((e["name"], e["version"]) for e in entries)


@cache
def index_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(INDEX_SCHEMA.read_text(encoding="utf-8"))
    return schema


def index_version() -> int:
    """The index format this tool writes (and the module extension reads: the same schema file)."""
    return int(index_schema()["properties"]["version"]["const"])


def _hash(value: Any) -> str:
    return "sha256:" + hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def _wheel_entries(chosen: list[tuple[str, str, WheelFile]]) -> list[dict[str, Any]]:
    return [
        {"name": n, "version": v, "filename": w.filename, "url": w.url, "index": w.index, "sha256": w.sha256,
         "size": w.size}
        for n, v, w in chosen
    ]  # fmt: skip


def utc_time(value: str) -> datetime:
    """A date (midnight UTC) or an RFC 3339 time, as an aware UTC datetime."""
    moment = datetime.fromisoformat(value)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def lock_time(exclude_newer: str, now: datetime | None = None) -> str:
    """When a lock is taken: now, but never later than `exclude_newer` (the lock reflects the index as of then)."""
    moment = now or datetime.now(UTC)
    return _iso(min(moment, utc_time(exclude_newer)) if exclude_newer else moment)


def _layer_entry(
    layer: LayerSpec, pylock_text: str, lock: LayerLock, lower_targets: list[str], previous: dict[str, Any], now: str
) -> dict[str, Any]:
    """The index entry of a layer. Its lock version moves when its version inputs do (its spec, what it installs, the
    install targets of the layers below it), and only for a versioned layer; `locked_at` moves when its lock does."""
    wheels = {platform: _wheel_entries(chosen) for platform, chosen in sorted(lock.chosen.items())}
    requirements_hash = _hash({p: [(w["name"], w["version"], w["sha256"]) for w in ws] for p, ws in wheels.items()})
    version_inputs_hash = _hash([layer.inputs, requirements_hash, lower_targets])
    if previous.get("version_inputs_hash") == version_inputs_hash:
        lock_version = previous["lock_version"]
    else:
        lock_version = previous["lock_version"] + 1 if layer.versioned and "lock_version" in previous else 1
    # The layer's lock changed: what it asks for or installs, or (versioned) the version it deploys as.
    changed = (previous.get("inputs"), previous.get("requirements_hash"), previous.get("lock_version")) != (
        layer.inputs,
        requirements_hash,
        lock_version,
    )
    locked_at = now if changed else previous["locked_at"]
    return {
        "inputs": layer.inputs,
        "install_target": f"{layer.env_name}@{lock_version}" if layer.versioned else layer.env_name,
        "lock_version": lock_version,
        "locked_at": locked_at,
        "pylock": layer.pylock,
        "pylock_sha256": hashlib.sha256(pylock_text.encode()).hexdigest(),
        "requirements_hash": requirements_hash,
        "version_inputs_hash": version_inputs_hash,
        "wheels": wheels,
    }


def _lower_pins(layer: LayerSpec, platform: Platform, provided: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """What the lower layers provide on `platform`: name -> (version, env name); sibling frameworks must agree."""
    pins: dict[str, tuple[str, str]] = {}
    for lower in layer.lower:  # nearest first, in C3 order
        for name, (version, provider) in provided[lower].get(platform.name, {}).items():
            if name in pins and pins[name][0] != version:
                raise LockError(
                    f"{layer.label}: its lower layers install different versions of {name} on {platform.name} "
                    f"({pins[name][1]}: {pins[name][0]}, {provider}: {version}); only one can be imported. Make "
                    f"them agree (pin one version in both, or move {name} into a layer both sit on), then lock again"
                )
            pins.setdefault(name, (version, provider))
    return pins


def lock_stack(
    stack: StackSpec,
    resolver: Resolver,
    previous_index: dict[str, Any],
    now: datetime | None = None,
    progress: Callable[[str], None] = lambda _: None,
    workspace: Path | None = None,
) -> dict[str, str]:
    """Locks every layer; returns file name -> content for the lock files and the index. `progress` hears what is
    being resolved (uv runs quietly); `workspace` is where the layers' requirements files are."""
    # Per layer and platform: canonical name -> (version, env name of the layer that installs it).
    provided: dict[str, dict[str, dict[str, tuple[str, str]]]] = {}
    files: dict[str, str] = {}
    index: dict[str, Any] = {
        "version": index_version(),
        "lock": stack.lock,
        "exclude_newer": stack.exclude_newer,
        "layers": {},
    }
    previous_layers = previous_index.get("layers", {}) if previous_index.get("version") == index_version() else {}
    locked_at = lock_time(stack.exclude_newer, now)
    for number, layer in enumerate(stack.layers, 1):
        platforms = layer.target_platforms()
        target = layer.target()
        provided[layer.key] = {}
        chosen: dict[str, list[tuple[str, str, WheelFile]]] = {}
        from_files = tuple(
            read_requirement_files(workspace or Path.cwd(), layer.requirements_files, layer.dependency_groups)
        )
        requirements = layer.requirements + from_files
        for platform in platforms:
            progress(f"[{number}/{len(stack.layers)}] resolving {layer.label} for {platform.name}")
            pins = _lower_pins(layer, platform, provided)
            _check_lower_pins(layer, from_files, platform, pins)
            constraints = sorted(f"{name}=={version}" for name, (version, _) in pins.items())
            resolved = (
                resolver.compile(
                    layer, requirements, platform, constraints, _previous_choice(previous_index, layer, platform)
                )
                if requirements
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
                source = resolver.indexes.wheel_index(layer, package.name, wheel.url)
                wheel = replace(wheel, url=resolver.indexes.recorded_url(wheel.url), index=source)
                own.append((package.name, package.version, wheel))
            chosen[platform.name] = sorted(own, key=lambda item: item[0])
            provided[layer.key][platform.name] = {name: (version, layer.env_name) for name, version, _ in own}
            provided[layer.key][platform.name] |= pins
        lower_names = tuple(stack.layer(key).env_name for key in layer.lower)
        lock = LayerLock(layer.label, layer.env_name, layer.python, tuple(platforms), lower_names, chosen)
        files[layer.pylock] = render_layer_lock(lock)
        lower_targets = [index["layers"][key]["install_target"] for key in layer.lower]
        previous = previous_layers.get(layer.key, {})
        entry = _layer_entry(layer, files[layer.pylock], lock, lower_targets, previous, locked_at)
        entry["requirements_files"] = {
            name: sha256_of((workspace or Path.cwd()) / name) for name in layer.requirements_files
        }
        index["layers"][layer.key] = entry
    try:
        jsonschema.validate(index, index_schema())
    except jsonschema.ValidationError as error:  # what Bazel handed over did not fit: report, don't trace back
        where = "/".join(map(str, error.absolute_path)) or "(top)"
        raise LockError(f"the lock index of {stack.lock} does not fit its schema at {where}: {error.message}") from None
    return files | {"index": json.dumps(index, indent=1, sort_keys=True) + "\n"}


def _versions(entry: dict[str, Any]) -> dict[str, str]:
    """name -> version(s) a layer's index entry installs, across its platforms."""
    found: dict[str, set[str]] = {}
    for wheels in entry.get("wheels", {}).values():
        for wheel in wheels:
            found.setdefault(wheel["name"], set()).add(wheel["version"])
    return {name: "/".join(sorted(versions)) for name, versions in found.items()}


def changes(previous_index: dict[str, Any], index: dict[str, Any]) -> list[str]:
    """One line per layer: what it installs, and what changed against the previous lock."""
    lines = []
    previous_layers = previous_index.get("layers", {})
    for key, entry in index["layers"].items():
        before = _versions(previous_layers.get(key, {}))
        after = _versions(entry)
        added = [f"+{n} {v}" for n, v in sorted(after.items()) if n not in before]
        removed = [f"-{n}" for n in sorted(before) if n not in after]
        moved = [f"{n} {before[n]} -> {v}" for n, v in sorted(after.items()) if n in before and before[n] != v]
        summary = ", ".join(added + removed + moved) or "unchanged"
        if key not in previous_layers:
            summary = "new layer" + (f": {summary}" if added else "")
        count = f"{len(after)} package{'' if len(after) == 1 else 's'}"
        lines.append(f"{entry['install_target']}: {count}; {summary}")
    return lines


def write_lock_files(out_dir: Path, index_name: str, files: dict[str, str], previous_index: dict[str, Any]) -> None:
    """Replaces only files whose content changed, then removes lock files of layers no longer locked. Refuses an
    index that another lock target wrote (its lock files would be lost)."""
    new_lock = json.loads(files["index"])["lock"]
    old_lock = previous_index.get("lock", new_lock)
    if old_lock != new_lock:
        raise LockError(
            f"{out_dir / index_name} is written by {old_lock}, not {new_lock}: one stack_lock per package (list "
            f"these layers in {old_lock}, or move this stack_lock to another package)"
        )
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
