"""The pack verb: a layer's files (stacktool.compose's `layer_files`) written as its deterministic archive, plus the
layer's metadata file and SBOM, in one action.

One action, not compose then pack: the composed tree never becomes a Bazel output that is hashed file by file,
staged into another action's sandbox, or handed over without its symlinks (remote execution and building without
the bytes may dereference a tree artifact's symlinks, bazelbuild/bazel#16361). Nor is it written to disk: the
archive reads the wheels' files where their install actions put them, and holds the runtime's files (from its
python-build-standalone archive) and the generated ones in memory. The tree itself is the `trees` output group's
(the compose verb), for inspection.
"""

from __future__ import annotations

import json
from pathlib import Path

from stacktool.archive import Member, tree_members, write_members_archive
from stacktool.compose import layer_files
from stacktool.contract import LAYER_RECORD, ComposeConfig, ContractError, LayerRecord, PackConfig, from_json
from stacktool.digest import sha256_of
from stacktool.errors import UserError
from stacktool.metadata import metadata_version, write_metadata
from stacktool.platforms import platform
from stacktool.sbom import write_sbom


class PackError(UserError):
    """The layer cannot be published as it is; the message names the fix."""


def compose_and_pack(
    layer: ComposeConfig, config: PackConfig, archive: Path, metadata_path: Path, pylock: Path, sbom: Path
) -> None:
    """Packs the layer `layer` describes (see `pack_layer`); an edited lock file is refused before anything else."""
    lock_sha256 = _check_lock(pylock, config)
    _, files = layer_files(layer)
    _pack(files, archive, metadata_path, (pylock, lock_sha256), config, sbom)


def _check_lock(pylock: Path, config: PackConfig) -> str:
    """The sha256 of `pylock`, which must be the file the lock index was written with."""
    lock_sha256 = sha256_of(pylock)
    if lock_sha256 != config.pylock_sha256:
        raise PackError(
            f"{pylock.name} changed after {config.lock_label} wrote the lock index; run "
            f"`bazel run {config.lock_label}` instead of editing lock files"
        )
    return lock_sha256


def pack_layer(tree: Path, archive: Path, metadata_path: Path, pylock: Path, config: PackConfig, sbom: Path) -> None:
    """Writes `archive` (top directory: the layer's install target), `metadata_path` and the layer's CycloneDX SBOM
    `sbom` (stacktool.sbom) for the layer composed in the directory `tree`."""
    _pack(tree_members(tree), archive, metadata_path, (pylock, _check_lock(pylock, config)), config, sbom)


def _pack(
    files: dict[str, Member],
    archive: Path,
    metadata_path: Path,
    lock: tuple[Path, str],
    config: PackConfig,
    sbom: Path,
) -> None:
    """`pack_layer` of the layer whose files are `files` (by path in the layer)."""
    pylock, lock_sha256 = lock
    if LAYER_RECORD not in files:
        raise ContractError(f"{LAYER_RECORD}: no such file in the layer (expected a LayerRecord)")
    held = files[LAYER_RECORD]
    record = from_json(LayerRecord, json.loads(held.content()), str(held.path or LAYER_RECORD))
    write_members_archive(files, archive, top=record.install_target, fmt=config.archive_format)
    source = record.runtime_source
    runtime = record.kind == "runtime"
    metadata = {
        "metadata_version": metadata_version(),
        "layer_name": record.env_name,
        "label": config.label,
        "install_target": record.install_target,
        "lock_version": config.lock_version,
        "locked_at": config.locked_at,
        "requirements_hash": config.requirements_hash,
        "kind": record.kind,
        "target_platform": record.platform,
        "python_implementation": f"cpython@{source.python_version}",
        "bound_to_implementation": runtime or platform(record.platform).is_windows,
        "runtime_archive": {"file": source.file, "sha256": source.sha256, "origin": source.origin},
        "runtime_layer": record.runtime,
        "required_layers": list(record.lower[:-1]),
        "app_launch_module": record.launch_module.name if record.launch_module else None,
        "app_launch_module_hash": record.launch_module.hash if record.launch_module else None,
        "app_support_modules": [{"name": m.name, "hash": m.hash} for m in record.support_modules],
        "packages": [
            {"name": p.name, "version": p.version, "wheel": p.wheel, "sha256": p.sha256} for p in record.packages
        ],
        "archive_name": archive.name,
        "archive_size": archive.stat().st_size,
        "archive_hashes": {"sha256": sha256_of(archive)},
        "lock": {"file": pylock.name, "sha256": lock_sha256},
    }
    write_metadata(metadata, metadata_path)
    write_sbom(metadata, sbom)
