"""The recompress verb: a packed layer's tar.zst archive again in the release compression, with its metadata and
SBOM telling the new archive's size and sha256 (stack_bundle(compression = "release"))."""

from __future__ import annotations

from pathlib import Path

from stacktool.archive import RELEASE, ArchiveError, recompress
from stacktool.digest import sha256_of
from stacktool.metadata import read_metadata, write_metadata
from stacktool.sbom import write_sbom


def recompress_layer(archive: Path, metadata_file: Path, out_archive: Path, out_metadata: Path, sbom: Path) -> None:
    """Writes `out_archive` (the same name as `archive`), `out_metadata` and `sbom` for the layer `metadata_file`
    describes."""
    metadata = read_metadata(metadata_file)
    if not archive.name == out_archive.name == metadata["archive_name"]:
        raise ArchiveError(f"{out_archive}: must keep the name {metadata['archive_name']} that {metadata_file} gives")
    recompress(archive, out_archive, RELEASE)
    metadata |= {"archive_size": out_archive.stat().st_size, "archive_hashes": {"sha256": sha256_of(out_archive)}}
    write_metadata(metadata, out_metadata)
    write_sbom(metadata, sbom)
