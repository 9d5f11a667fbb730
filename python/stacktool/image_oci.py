"""OCI image layouts: media types, canonical JSON, and reading and validating a layout (image-spec v1.1).

The image verb (stacktool.image) writes layouts; it reads one as a base image (`read_image`) and validates what it
wrote (`validate_layout`), as the tests do: the index, manifest, config and `oci-layout` against the vendored
image-spec schemas (schemas/oci/), plus what the schemas cannot say: media types, and that every descriptor's
digest and size are those of its blob (and a layer's diff_id that of its uncompressed content).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import referencing
import referencing.jsonschema

from stacktool.errors import UserError

SCHEMAS = Path(__file__).resolve().parent / "schemas" / "oci"
LAYOUT_VERSION = "1.0.0"
INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
# Docker's (schema 2) names for the same things: a base image pulled from a Docker registry may use them.
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
LAYER_TYPES = {  # layer media types a base image may have -> the OCI type written for the same bytes
    LAYER_GZIP: LAYER_GZIP,
    LAYER_TAR: LAYER_TAR,
    "application/vnd.docker.image.rootfs.diff.tar.gzip": LAYER_GZIP,
    "application/vnd.docker.image.rootfs.diff.tar": LAYER_TAR,
}
REF_NAME = "org.opencontainers.image.ref.name"
_SCHEMA_FILES = {"index": "image-index-schema.json", "manifest": "image-manifest-schema.json"}
_SCHEMA_FILES |= {"config": "config-schema.json", "layout": "image-layout-schema.json"}


class ImageError(UserError):
    """An OCI image layout that cannot be read or written as asked; the message names the file."""


def canonical_json(document: dict[str, Any]) -> bytes:
    """The bytes a document is stored as: sorted keys, no insignificant white space, UTF-8."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def descriptor(media_type: str, data: bytes) -> dict[str, Any]:
    """The descriptor of `data` stored as a blob."""
    return {"mediaType": media_type, "digest": "sha256:" + hashlib.sha256(data).hexdigest(), "size": len(data)}


def blob_path(layout: Path, digest: str) -> Path:
    """Where a layout keeps the blob `digest` (only sha256 digests, the only ones written here)."""
    algorithm, _, encoded = digest.partition(":")
    if algorithm != "sha256" or len(encoded) != 64 or not all(c in "0123456789abcdef" for c in encoded):
        raise ImageError(f"{layout}: unsupported or malformed digest {digest!r} (expected sha256:<64 hex digits>)")
    return layout / "blobs" / "sha256" / encoded


def _retrieve(uri: str) -> referencing.Resource[Any]:
    """Every reference of the image-spec schemas is to one of their files, by name (see schemas/oci/README.md)."""
    path = SCHEMAS / uri.rsplit("/", 1)[-1].partition("#")[0]
    if not path.is_file():
        raise referencing.exceptions.NoSuchResource(ref=uri)
    return referencing.jsonschema.DRAFT4.create_resource(json.loads(path.read_text(encoding="utf-8")))


@cache
def _validator(kind: str) -> jsonschema.Draft4Validator:
    schema = json.loads((SCHEMAS / _SCHEMA_FILES[kind]).read_text(encoding="utf-8"))
    registry: referencing.Registry[Any] = referencing.Registry(retrieve=_retrieve)  # type: ignore[call-arg]
    return jsonschema.Draft4Validator(schema, registry=registry)


def schema_problems(kind: str, document: Any, where: str) -> list[str]:
    """What is wrong with `document` as an OCI `kind` (index, manifest, config, layout) per its schema."""
    errors = sorted(_validator(kind).iter_errors(document), key=lambda e: list(e.path))
    return [f"{where}: {'/'.join(map(str, e.path)) or '(top)'}: {e.message}" for e in errors]


def read_blob(layout: Path, desc: dict[str, Any], where: str) -> bytes:
    """The content of a small blob (a manifest, a config), checked against its descriptor."""
    path = blob_path(layout, desc["digest"])
    if not path.is_file():
        raise ImageError(f"{where}: blob {desc['digest']} is missing from {layout}/blobs")
    data = path.read_bytes()
    if len(data) != desc["size"] or "sha256:" + hashlib.sha256(data).hexdigest() != desc["digest"]:
        raise ImageError(f"{where}: blob {desc['digest']} does not match its descriptor (digest or size)")
    return data


def read_json(layout: Path, desc: dict[str, Any], kind: str, where: str) -> dict[str, Any]:
    """A JSON blob, checked against its descriptor and its schema."""
    try:
        document: dict[str, Any] = json.loads(read_blob(layout, desc, where))
    except json.JSONDecodeError as error:
        raise ImageError(f"{where}: blob {desc['digest']} is not JSON: {error}") from None
    problems = schema_problems(kind, document, f"{where} ({desc['digest']})")
    if problems:
        raise ImageError("; ".join(problems))
    return document


@dataclass(frozen=True)
class Image:
    """One image of a layout: its manifest's descriptor, the manifest, and the config."""

    layout: Path
    manifest_descriptor: dict[str, Any]
    manifest: dict[str, Any]
    config: dict[str, Any]


def read_index(layout: Path) -> dict[str, Any]:
    """The layout's index.json, after checking `oci-layout`."""
    for name in ("oci-layout", "index.json"):
        if not (layout / name).is_file():
            raise ImageError(f"{layout} is not an OCI image layout: it has no {name}")
    marker = json.loads((layout / "oci-layout").read_text(encoding="utf-8"))
    index: dict[str, Any] = json.loads((layout / "index.json").read_text(encoding="utf-8"))
    problems = schema_problems("layout", marker, f"{layout}/oci-layout")
    problems += schema_problems("index", index, f"{layout}/index.json")
    if problems:
        raise ImageError("; ".join(problems))
    return index


def read_image(layout: Path, os: str, architecture: str) -> Image:
    """The image for `os`/`architecture` in a layout: its only manifest, or the one of an index (top-level or
    nested once, as `skopeo copy --all` writes them) whose platform matches."""
    where = f"{layout}/index.json"
    candidates = read_index(layout)["manifests"]
    if len(candidates) == 1 and candidates[0]["mediaType"] in (INDEX, DOCKER_LIST):
        candidates = read_json(layout, candidates[0], "index", where)["manifests"]
    matching = [
        d
        for d in candidates
        if "platform" not in d or (d["platform"]["os"], d["platform"]["architecture"]) == (os, architecture)
    ]
    if len(matching) != 1:
        found = ", ".join(
            f"{d['platform']['os']}/{d['platform']['architecture']}" for d in candidates if "platform" in d
        )
        raise ImageError(
            f"{where}: expected one image for {os}/{architecture}, found {len(matching)} (platforms: {found or '-'}); "
            "give a layout with one image for the target platform"
        )
    desc = matching[0]
    if desc["mediaType"] not in (MANIFEST, DOCKER_MANIFEST):
        raise ImageError(f"{where}: {desc['digest']} is a {desc['mediaType']}, not an image manifest")
    manifest = read_json(layout, desc, "manifest", where)
    config = read_json(layout, manifest["config"], "config", f"{where}: config")
    if (config["os"], config["architecture"]) != (os, architecture):
        raise ImageError(
            f"{layout}: the image is for {config['os']}/{config['architecture']}, not {os}/{architecture}; "
            "use a base image of the target platform"
        )
    if len(config["rootfs"]["diff_ids"]) != len(manifest["layers"]):
        raise ImageError(
            f"{layout}: its config lists {len(config['rootfs']['diff_ids'])} diff_ids for "
            f"{len(manifest['layers'])} layers"
        )
    return Image(layout, desc, manifest, config)


def file_digests(path: Path, media_type: str) -> tuple[str, str]:
    """(digest, diff_id) of a layer blob: the sha256 of its bytes, and of its uncompressed tar."""
    blob, content = hashlib.sha256(), hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            blob.update(chunk)
    if media_type == LAYER_TAR:
        return "sha256:" + blob.hexdigest(), "sha256:" + blob.hexdigest()
    with gzip.open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            content.update(chunk)
    return "sha256:" + blob.hexdigest(), "sha256:" + content.hexdigest()


def validate_layout(layout: Path) -> list[str]:
    """Everything wrong with an OCI image layout written here (or none): schemas, media types, each blob's digest
    and size, each layer's diff_id. Reads every blob once."""
    try:
        index = read_index(layout)
    except ImageError as error:
        return [str(error)]
    problems = [] if index.get("mediaType") == INDEX else [f"{layout}/index.json: mediaType is not {INDEX}"]
    for desc in index["manifests"]:
        where = f"{layout}/index.json: manifest {desc['digest']}"
        try:
            if desc["mediaType"] != MANIFEST:
                raise ImageError(f"{where}: mediaType {desc['mediaType']!r} is not {MANIFEST}")
            manifest = read_json(layout, desc, "manifest", where)
            if manifest.get("mediaType") != MANIFEST or manifest["config"]["mediaType"] != CONFIG:
                raise ImageError(f"{where}: the manifest's mediaType must be {MANIFEST}, its config's {CONFIG}")
            config = read_json(layout, manifest["config"], "config", f"{where}: config")
            platform = desc.get("platform", {})
            if (platform.get("os"), platform.get("architecture")) != (config["os"], config["architecture"]):
                problems.append(f"{where}: platform {platform} differs from the config's os and architecture")
            diff_ids = config["rootfs"]["diff_ids"]
            if len(diff_ids) != len(manifest["layers"]):
                problems.append(f"{where}: {len(manifest['layers'])} layers but {len(diff_ids)} diff_ids")
            for layer, diff_id in zip(manifest["layers"], diff_ids, strict=False):
                problems += _layer_problems(layout, layer, diff_id, where)
        except ImageError as error:
            problems.append(str(error))
    return problems


def _layer_problems(layout: Path, layer: dict[str, Any], diff_id: str, where: str) -> list[str]:
    if layer["mediaType"] not in (LAYER_GZIP, LAYER_TAR):
        return [f"{where}: layer {layer['digest']}: mediaType {layer['mediaType']!r} is not a tar or tar+gzip layer"]
    path = blob_path(layout, layer["digest"])
    if not path.is_file():
        return [f"{where}: layer blob {layer['digest']} is missing"]
    problems = []
    if path.stat().st_size != layer["size"]:
        problems.append(f"{where}: layer blob {layer['digest']} has {path.stat().st_size} bytes, not {layer['size']}")
    try:
        digest, actual_diff_id = file_digests(path, layer["mediaType"])
    except (OSError, EOFError, zlib.error) as error:
        return [*problems, f"{where}: layer blob {layer['digest']} is not valid {layer['mediaType']}: {error}"]
    if digest != layer["digest"]:
        problems.append(f"{where}: layer blob {layer['digest']} has digest {digest}")
    if actual_diff_id != diff_id:
        problems.append(f"{where}: layer {layer['digest']} has diff_id {actual_diff_id}, the config says {diff_id}")
    return problems
