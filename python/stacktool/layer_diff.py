"""What changed between two published versions of a layer or of a stack (the `diff` verb; docs/reports.md).

Each side is a layer's metadata file or a directory of published layers (their metadata files directly in it or one
level down, as in `bazel-bin/<package>/` or a stack_bundle's `<platform>/`); layers are matched by layer_name and
platform. Per layer: what its metadata says changed (install target, lock, lower layers...), packages added, removed
or changed (version or wheel), and, from the archives next to the metadata, files added, removed or changed (by
content) and the bytes of each: as text for people, or as JSON for tools.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from stacktool.errors import UserError
from stacktool.metadata import lower_layers, read_metadata
from stacktool.size_report import Member, archive_members, human, installed_size

DIFF_VERSION = 1
Side = tuple[Path, dict[str, Any]]  # a layer on one side: its metadata file and its metadata
SHOWN_FILES = 10  # per kind of change and layer, in the text (all of them with --files, and always in the JSON)


class DiffError(UserError):
    """Inputs that cannot be compared."""


def _metadata_files(path: Path) -> list[Path]:
    """The layer metadata files `path` is or holds (directly or one directory down), by their content."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DiffError(f"{path}: no such file or directory (expected a layer's metadata file or a directory of them)")
    found = []
    for candidate in sorted(path.glob("*.json")) + sorted(path.glob("*/*.json")):
        if candidate.name.endswith(".cdx.json"):
            continue
        try:
            data = json.loads(candidate.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(data, dict) and "metadata_version" in data and "archive_name" in data:
            found.append(candidate)
    if not found:
        raise DiffError(
            f"{path}: holds no layer metadata (<install_target>-<platform>.json) directly or one level down"
        )
    return found


def _layers(path: Path) -> dict[tuple[str, str], Side]:
    """(layer_name, target_platform) -> (metadata file, metadata) of the layers `path` is or holds."""
    layers: dict[tuple[str, str], Side] = {}
    for file in _metadata_files(path):
        metadata = read_metadata(file)
        key = (metadata["layer_name"], metadata["target_platform"])
        if key in layers:
            raise DiffError(f"{path}: two versions of {key[0]} for {key[1]} ({layers[key][0]}, {file}); pass one file")
        layers[key] = (file, metadata)
    return layers


def _packages(metadata: dict[str, Any] | None) -> dict[str, dict[str, str]]:
    packages = metadata["packages"] if metadata else []
    return {canonicalize_name(p["name"]): p for p in packages}


def _package_changes(old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, list[Any]]:
    before, after = _packages(old), _packages(new)
    return {
        "added": [after[n] for n in sorted(after.keys() - before.keys())],
        "removed": [before[n] for n in sorted(before.keys() - after.keys())],
        "changed": [
            {"name": after[n]["name"], "old": before[n], "new": after[n]}
            for n in sorted(before.keys() & after.keys())
            if (before[n]["version"], before[n]["sha256"]) != (after[n]["version"], after[n]["sha256"])
        ],
    }


def _members(side: Side | None, digests: bool) -> dict[str, Member]:
    if side is None:
        return {}
    path, metadata = side
    members = archive_members(path.parent / metadata["archive_name"], digests=digests)
    return {m.path: m for m in members if m.kind != "dir"}


def _file_changes(old: dict[str, Member], new: dict[str, Member]) -> dict[str, Any]:
    changed = [
        p for p in sorted(old.keys() & new.keys()) if (old[p].kind, old[p].digest) != (new[p].kind, new[p].digest)
    ]
    return {
        "added": [{"path": p, "kind": new[p].kind, "size": new[p].size} for p in sorted(new.keys() - old.keys())],
        "removed": [{"path": p, "kind": old[p].kind, "size": old[p].size} for p in sorted(old.keys() - new.keys())],
        "changed": [
            {"path": p, "kind": new[p].kind, "old_size": old[p].size, "new_size": new[p].size} for p in changed
        ],
        "unchanged": len(old.keys() & new.keys()) - len(changed),
    }


# Metadata fields whose change the diff reports (a path into the metadata, and its name in the output).
FIELDS = {
    "install_target": ("install_target",),
    "lock_version": ("lock_version",),
    "locked_at": ("locked_at",),
    "requirements_hash": ("requirements_hash",),
    "required_layers": ("required_layers",),
    "python_implementation": ("python_implementation",),
    "runtime_archive_sha256": ("runtime_archive", "sha256"),
    "app_launch_module": ("app_launch_module",),
    "app_launch_module_hash": ("app_launch_module_hash",),
    "lock_sha256": ("lock", "sha256"),
}


def _field(metadata: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        metadata = metadata[key]
    return metadata


def _sizes(side: Side | None, members: dict[str, Member]) -> dict[str, Any] | None:
    if side is None:
        return None
    path, metadata = side
    return {
        "install_target": metadata["install_target"],
        "metadata": str(path),
        "archive_sha256": metadata["archive_hashes"]["sha256"],
        "archive_size": metadata["archive_size"],
        "installed_size": installed_size(list(members.values())),
    }


def diff_layer(old: Side | None, new: Side | None) -> dict[str, Any]:
    """What changed from `old` to `new` (a (metadata file, metadata) each; None for a layer only on one side)."""
    either = (new or old)[1]  # type: ignore[index]
    same_archive = bool(old and new and old[1]["archive_hashes"] == new[1]["archive_hashes"])
    old_members, new_members = _members(old, not same_archive), _members(new, not same_archive)
    metadata = {}
    if old and new:
        for name, path in FIELDS.items():
            if _field(old[1], path) != _field(new[1], path):
                metadata[name] = {"old": _field(old[1], path), "new": _field(new[1], path)}
    packages = _package_changes(old[1] if old else None, new[1] if new else None)
    files = _file_changes(old_members, new_members)
    status = "added" if old is None else "removed" if new is None else "changed"
    if status == "changed" and same_archive and not metadata and not any(packages.values()):
        status = "unchanged"
    before, after = _sizes(old, old_members), _sizes(new, new_members)
    return {
        "layer_name": either["layer_name"],
        "target_platform": either["target_platform"],
        "kind": either["kind"],
        "status": status,
        "old": before,
        "new": after,
        "metadata": metadata,
        "packages": packages,
        "files": files,
        "bytes": {
            key: {
                "old": before[key] if before else 0,
                "new": after[key] if after else 0,
                "delta": (after[key] if after else 0) - (before[key] if before else 0),
            }
            for key in ("archive_size", "installed_size")
        },
    }


def _order(pair: tuple[Side | None, Side | None]) -> tuple[int, str, str]:
    """Lowest layers first (fewest layers below), then by name and platform."""
    metadata = (pair[1] or pair[0])[1]  # type: ignore[index]
    return len(lower_layers(metadata)), metadata["layer_name"], metadata["target_platform"]


def diff(old: Path, new: Path) -> dict[str, Any]:
    """The differences between two published layers (metadata files) or stacks (directories), as JSON data."""
    if old.is_file() and new.is_file():
        pairs = {("", ""): ((old, read_metadata(old)), (new, read_metadata(new)))}
    else:
        before, after = _layers(old), _layers(new)
        pairs = {key: (before.get(key), after.get(key)) for key in before.keys() | after.keys()}
    layers = [diff_layer(*pair) for pair in sorted(pairs.values(), key=_order)]
    counts = {status: sum(layer["status"] == status for layer in layers) for status in ("added", "removed", "changed")}
    totals = {key: sum(layer["bytes"][key]["delta"] for layer in layers) for key in ("archive_size", "installed_size")}
    return {"diff_version": DIFF_VERSION, "old": str(old), "new": str(new), "layers": layers} | {
        "summary": counts | {"unchanged": len(layers) - sum(counts.values()), "delta": totals}
    }


def _signed(size: int) -> str:
    return ("+" if size >= 0 else "-") + human(abs(size))


def _file_lines(files: dict[str, Any], all_files: bool) -> list[str]:
    lines = []
    for kind, mark in (("added", "+"), ("removed", "-"), ("changed", "~")):
        entries = files[kind]
        for entry in entries if all_files else entries[:SHOWN_FILES]:
            if entry["kind"] == "symlink":
                size = "symlink"
            elif kind == "changed":
                size = f"{human(entry['old_size'])} -> {human(entry['new_size'])}"
            else:
                size = human(entry["size"])
            lines.append(f"      {mark} {entry['path']} ({size})")
        if not all_files and len(entries) > SHOWN_FILES:
            lines.append(f"      ... and {len(entries) - SHOWN_FILES} more {kind} (--files lists them all)")
    return lines


def _layer_lines(layer: dict[str, Any], all_files: bool) -> list[str]:
    lines = [f"{layer['layer_name']} ({layer['target_platform']}): {layer['status']}"]
    if layer["status"] == "unchanged":
        return lines
    for name, change in layer["metadata"].items():
        lines.append(f"  {name}: {change['old']} -> {change['new']}")
    packages = layer["packages"]
    lines.append(
        f"  packages: {len(packages['added'])} added, {len(packages['removed'])} removed, "
        f"{len(packages['changed'])} changed"
    )
    lines += [f"    + {p['name']} {p['version']} ({p['wheel']})" for p in packages["added"]]
    lines += [f"    - {p['name']} {p['version']} ({p['wheel']})" for p in packages["removed"]]
    lines += [
        f"    ~ {p['name']} {p['old']['version']} -> {p['new']['version']}"
        + (f" ({p['old']['wheel']} -> {p['new']['wheel']})" if p["old"]["version"] == p["new"]["version"] else "")
        for p in packages["changed"]
    ]
    files = layer["files"]
    grown = {
        "added": sum(f["size"] for f in files["added"]),
        "removed": -sum(f["size"] for f in files["removed"]),
        "changed": sum(f["new_size"] - f["old_size"] for f in files["changed"]),
    }
    counts = [f"{len(files[k])} {k}" + (f" ({_signed(grown[k])})" if files[k] else "") for k in grown]
    lines.append(f"  files: {', '.join(counts)}, {files['unchanged']} unchanged")
    if layer["status"] == "changed" or all_files:  # a whole layer added or removed: its files are not news
        lines += _file_lines(files, all_files)
    for key, label in (("archive_size", "archive"), ("installed_size", "installed")):
        size = layer["bytes"][key]
        lines.append(f"  {label}: {human(size['old'])} -> {human(size['new'])} ({_signed(size['delta'])})")
    return lines


def render_text(result: dict[str, Any], all_files: bool = False) -> str:
    """The diff for people: one block per layer (lowest first), then a summary line."""
    lines = [f"diff {result['old']} -> {result['new']}"]
    for layer in result["layers"]:
        lines += _layer_lines(layer, all_files)
    summary = result["summary"]
    counts = ", ".join(f"{summary[s]} {s}" for s in ("changed", "added", "removed", "unchanged"))
    delta = summary["delta"]
    lines.append(
        f"layers: {counts}; archives {_signed(delta['archive_size'])}, installed {_signed(delta['installed_size'])}"
    )
    return "\n".join(lines) + "\n"
