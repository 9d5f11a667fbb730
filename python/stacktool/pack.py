"""The pack verb: a layer's tree into its deterministic archive, plus the layer's metadata file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stacktool.archive import write_archive
from stacktool.errors import UserError
from stacktool.metadata import sha256_of, write_metadata


class PackError(UserError):
    """The layer cannot be published as it is; the message names the fix."""


def pack_layer(
    tree: Path,
    archive: Path,
    metadata_path: Path,
    pylock: Path,
    config: dict[str, Any],
    symlinks: dict[str, str] | None = None,
) -> None:
    """Writes `archive` (top directory: the layer's env_name) and `metadata_path` for the layer in `tree`;
    `symlinks` (from compose) are archived as symlinks however the tree was staged."""
    lock_sha256 = sha256_of(pylock)
    if lock_sha256 != config["pylock_sha256"]:
        raise PackError(
            f"{pylock.name} changed after {config['lock_label']} wrote the lock index; run "
            f"`bazel run {config['lock_label']}` instead of editing lock files"
        )
    write_archive(tree, archive, top=config["env_name"], fmt=config["archive_format"], symlinks=symlinks)
    runtime = json.loads(Path(config["runtime_info"]).read_text(encoding="utf-8"))
    metadata = {
        "metadata_version": 1,
        "layer_name": config["layer_name"],
        "label": config["label"],
        "env_name": config["env_name"],
        "kind": config["kind"],
        "platform": config["platform"],
        "python": {
            "implementation": "cpython",
            "version": runtime["python_version"],
            "runtime_archive": {"file": runtime["file"], "sha256": runtime["sha256"], "origin": runtime["origin"]},
        },
        "runtime_layer": config["runtime"],
        "lower_layers": config["lower"],
        "launch_module": config["launch_module"],
        "packages": [
            {"name": w["name"], "version": w["version"], "wheel": w["filename"], "sha256": w["sha256"]}
            for w in config["wheels"]
        ],
        "archive": {
            "name": archive.name,
            "format": config["archive_format"],
            "sha256": sha256_of(archive),
            "size": archive.stat().st_size,
        },
        "lock": {"file": pylock.name, "sha256": lock_sha256},
    }
    write_metadata(metadata, metadata_path)
