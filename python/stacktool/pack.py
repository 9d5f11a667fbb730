"""The pack verb: a layer's tree into its deterministic archive, plus the layer's metadata file."""

from __future__ import annotations

from pathlib import Path

from stacktool.archive import write_archive
from stacktool.contract import LAYER_RECORD, LayerRecord, PackConfig, read_json
from stacktool.digest import sha256_of
from stacktool.errors import UserError
from stacktool.metadata import metadata_version, write_metadata
from stacktool.platforms import platform
from stacktool.sbom import write_sbom


class PackError(UserError):
    """The layer cannot be published as it is; the message names the fix."""


def pack_layer(
    tree: Path,
    archive: Path,
    metadata_path: Path,
    pylock: Path,
    config: PackConfig,
    symlinks: dict[str, str] | None = None,
    sbom: Path | None = None,
) -> None:
    """Writes `archive` (top directory: the layer's install target) and `metadata_path` for the layer in `tree`;
    `symlinks` (from compose) are archived as symlinks however the tree was staged; `sbom`: also write the layer's
    CycloneDX SBOM there (stacktool.sbom)."""
    lock_sha256 = sha256_of(pylock)
    if lock_sha256 != config.pylock_sha256:
        raise PackError(
            f"{pylock.name} changed after {config.lock_label} wrote the lock index; run "
            f"`bazel run {config.lock_label}` instead of editing lock files"
        )
    record = read_json(LayerRecord, tree / LAYER_RECORD)
    write_archive(tree, archive, top=record.install_target, fmt=config.archive_format, symlinks=symlinks)
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
    if sbom is not None:
        write_sbom(metadata, sbom)
