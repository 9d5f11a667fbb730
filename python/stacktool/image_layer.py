"""One stack layer as an OCI image layer (`stacktool image layer`): the layer as deployed at the image's prefix,
its postinstall already applied, in a deterministic tar+gzip blob.

The blob holds this layer's files only (under `<prefix>/<install target>/`, with the parent directories of the
prefix), so it is the same whatever application an image puts on top: two images over one framework share the
framework's blob, byte for byte. postinstall's outputs (pyvenv.cfg, the `bin/python_` link, the library path) are
computed by the layer's own postinstall.py code (`deployment_files`) for the prefix, from the layer's record, the
runtime version it records and what the lower layers' steps report, so no Python of the target platform runs.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from stacktool.archive import extract_archive, write_archive
from stacktool.contract import LAYER_RECORD, LayerRecord, read_json, to_json
from stacktool.image_oci import LAYER_GZIP, ImageError, file_digests
from stacktool.injected.postinstall import deployment_files
from stacktool.platforms import platform

BLOB = "layer.tar.gz"  # in the step's output directory, with DESCRIPTOR
DESCRIPTOR = "layer.json"
_PREFIX_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]*")


@dataclass(frozen=True)
class LayerImageConfig:
    """What the `image layer` step reads (written by rules/private/stack_image.bzl)."""

    archive: str  # the layer's published archive
    install_target: str  # its deployed name: the top directory of the archive
    prefix: str  # the absolute directory the image deploys its layers in
    lower: tuple[str, ...]  # output directories of this step for the layers below, nearest first, the runtime last


@dataclass(frozen=True)
class LayerDescriptor:
    """DESCRIPTOR: the blob's descriptor, and what the image layers above this one need from it."""

    install_target: str
    prefix: str
    media_type: str
    digest: str  # sha256:<hex> of the blob
    size: int
    diff_id: str  # sha256:<hex> of the uncompressed tar
    libraries: tuple[str, ...]  # real paths in the image of the shared libraries it exposes (dynlib entries resolved)


def prefix_parts(prefix: str) -> list[str]:
    """The components of an image prefix, which must be an absolute, normalized path of plain names."""
    parts = prefix.split("/")[1:]
    if not prefix.startswith("/") or not parts or not all(_PREFIX_PART.fullmatch(part) for part in parts):
        raise ImageError(
            f"image prefix {prefix!r} must be an absolute directory such as /opt/venvstacks (names of letters, "
            "digits and ._@+-, not starting with a dot; no trailing slash)"
        )
    return parts


def write_layer(config: LayerImageConfig, out: Path) -> LayerDescriptor:
    """Writes BLOB and DESCRIPTOR for the layer in `config` into directory `out`."""
    parts = prefix_parts(config.prefix)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".image-layer-", dir=out.parent) as tmp:
        parent = Path(tmp).resolve().joinpath(*parts)
        parent.mkdir(parents=True)
        layer = extract_archive(Path(config.archive), parent, top=config.install_target)
        record = read_json(LayerRecord, layer / LAYER_RECORD)
        where = f"{config.archive} ({config.install_target})"
        if record.install_target != config.install_target:
            raise ImageError(f"{where}: its record says it deploys as {record.install_target!r}")
        if platform(record.platform).os != "linux":
            raise ImageError(f"{where}: a {record.platform} layer; OCI images here are Linux images")
        _refuse_whiteouts(layer, where)
        if record.kind != "runtime":
            _apply_postinstall(config, record, layer, where)
        libraries = _exposed_libraries(layer, record, posixpath.join(config.prefix, config.install_target), where)
        blob = out / BLOB
        write_archive(Path(tmp).resolve() / parts[0], blob, top=parts[0], fmt="tar.gz")
    digest, diff_id = file_digests(blob, LAYER_GZIP)
    descriptor = LayerDescriptor(
        config.install_target, config.prefix, LAYER_GZIP, digest, blob.stat().st_size, diff_id, libraries
    )
    (out / DESCRIPTOR).write_text(to_json(descriptor), encoding="utf-8")
    return descriptor


def _apply_postinstall(config: LayerImageConfig, record: LayerRecord, layer: Path, where: str) -> None:
    """Writes what postinstall.py would write into the layer deployed at the prefix."""
    lower = [read_descriptor(Path(directory)) for directory in config.lower]
    if [d.install_target for d in lower] != list(record.lower) or {d.prefix for d in lower} - {config.prefix}:
        raise ImageError(
            f"{where}: the image layers given for the layers below ({', '.join(d.install_target for d in lower)}) "
            f"are not {', '.join(record.lower)} at {config.prefix}"
        )
    libraries = {d.install_target: list(d.libraries) for d in lower}
    deployed = posixpath.join(config.prefix, config.install_target)
    version = record.runtime_source.python_version
    files, links = deployment_files(dataclasses.asdict(record), deployed, version, libraries.__getitem__, posixpath)
    for name, target in links.items():
        link = layer / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)
    for name, text in files.items():
        (layer / name).write_text(text, encoding="utf-8")


def _exposed_libraries(layer: Path, record: LayerRecord, deployed: str, where: str) -> tuple[str, ...]:
    """The real paths, once deployed at `deployed`, of the libraries this layer's dynlib directory links to: what
    postinstall.py of a layer above reads from a deployed layer (`_real_libraries`), read here from the tree."""
    dynlib = layer / record.dynlib_dir
    found = []
    for entry in sorted(dynlib.iterdir()) if dynlib.is_dir() else []:
        real = entry.resolve()
        if not real.is_relative_to(layer):
            raise ImageError(f"{where}: {record.dynlib_dir}/{entry.name} leads outside the layer")
        found.append(posixpath.join(deployed, real.relative_to(layer).as_posix()))
    return tuple(found)


def _refuse_whiteouts(layer: Path, where: str) -> None:
    """An OCI layer's `.wh.` files delete files of the layers below: a layer must not ship one."""
    for directory, dirnames, filenames in os.walk(layer):
        for name in dirnames + filenames:
            if name.startswith(".wh."):
                rel = Path(directory, name).relative_to(layer)
                raise ImageError(f"{where}: {rel} would be an OCI whiteout (a name starting with .wh.); rename it")


def read_descriptor(directory: Path) -> LayerDescriptor:
    """The descriptor the `image layer` step wrote into `directory`."""
    return read_json(LayerDescriptor, directory / DESCRIPTOR)
