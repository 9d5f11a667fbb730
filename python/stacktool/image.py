"""Container images of a stack (`stacktool image`): an OCI image layout whose layers are the stack's layers.

Three steps, each one Bazel action (rules/private/stack_image.bzl):
- `layer`: one stack layer as an OCI layer blob (stacktool.image_layer), the same for every image using the layer;
- `layout`: an application's image: the base image's layers (optional), then one layer per stack layer, lowest
  first; a config (entrypoint running the launch module, Env, labels, the target platform); manifest and index;
- `tarball`: the layout as one tar file (what `skopeo copy oci-archive:`, `podman load` and `docker load` read).
Everything written is deterministic: blobs from deterministic inputs, JSON with sorted keys, fixed times.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stacktool.archive import FIXED_MTIME
from stacktool.contract import read_json
from stacktool.image_layer import BLOB, LayerImageConfig, read_descriptor, write_layer
from stacktool.image_oci import (
    CONFIG,
    INDEX,
    LAYER_TYPES,
    LAYOUT_VERSION,
    MANIFEST,
    REF_NAME,
    ImageError,
    blob_path,
    canonical_json,
    descriptor,
    read_image,
    schema_problems,
)
from stacktool.metadata import lower_layers, read_metadata
from stacktool.platforms import platform

CREATED = "1980-01-01T00:00:00Z"  # archive.FIXED_MTIME: the time of every file in the layers, and of the image
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # what container runtimes default to
LABEL_PREFIX = "rules_venvstacks."
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")


@dataclass(frozen=True)
class ImageLayer:
    """A stack layer of an image: the `image layer` step's output directory and the layer's published metadata."""

    oci: str
    metadata: str


@dataclass(frozen=True)
class LayoutConfig:
    """What the `image layout` step reads (written by rules/private/stack_image.bzl)."""

    label: str  # the stack_image target
    platform: str
    prefix: str
    tag: str  # the image's name in index.json (org.opencontainers.image.ref.name)
    layers: tuple[ImageLayer, ...]  # the runtime, the frameworks lowest first, the application
    base: str | None  # an OCI image layout directory whose image goes below the stack
    env: dict[str, str]  # set in the image's Env after PATH
    cmd: tuple[str, ...]  # the image's Cmd: default arguments of the launch module


def run(step: str, source: Path, out: Path) -> None:
    """The `image` verb: `source` is the step's config (layer, layout) or the layout directory (tarball)."""
    if step == "layer":
        write_layer(read_json(LayerImageConfig, source), out)
    elif step == "layout":
        write_layout(read_json(LayoutConfig, source), out)
    else:
        write_tarball(source, out)


def write_layout(config: LayoutConfig, out: Path) -> dict[str, Any]:
    """Writes the application's image as an OCI image layout into directory `out`; returns its manifest."""
    target = platform(config.platform)
    if target.os != "linux":
        raise ImageError(
            f"{config.label}: OCI images of rules_venvstacks are Linux images, and {config.platform} is not Linux; "
            "build the image for linux_x86_64 or linux_aarch64 (--platforms=@rules_venvstacks//platforms:<name>)"
        )
    if not _TAG.fullmatch(config.tag):
        raise ImageError(f"{config.label}: tag {config.tag!r} is not a valid image tag ([A-Za-z0-9_][A-Za-z0-9._-]*)")
    (out / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    layers: list[dict[str, Any]] = []
    diff_ids: list[str] = []
    history: list[dict[str, Any]] | None = []
    base_config: dict[str, Any] = {}
    if config.base:
        base = read_image(Path(config.base), "linux", target.oci_architecture)
        for desc, diff_id in zip(base.manifest["layers"], base.config["rootfs"]["diff_ids"], strict=True):
            if desc["mediaType"] not in LAYER_TYPES:
                raise ImageError(
                    f"{config.base}: layer {desc['digest']} is a {desc['mediaType']}, which is not "
                    "supported here (tar or tar+gzip layers only)"
                )
            _copy_blob(blob_path(base.layout, desc["digest"]), out, desc, verify=True)
            kept = {key: desc[key] for key in ("digest", "size", "annotations") if key in desc}
            layers.append({"mediaType": LAYER_TYPES[desc["mediaType"]], **kept})
            diff_ids.append(diff_id)
        base_config = base.config.get("config") or {}
        base_history = base.config.get("history") or []
        # history must have one entry per layer that is not `empty_layer`, or none at all.
        consistent = len([h for h in base_history if not h.get("empty_layer")]) == len(layers)
        history = list(base_history) if consistent else None
    stack = [(read_descriptor(Path(layer.oci)), read_metadata(Path(layer.metadata))) for layer in config.layers]
    app = _check_stack(config, stack)
    for (desc, metadata), layer in zip(stack, config.layers, strict=True):
        blob = {"mediaType": desc.media_type, "digest": desc.digest, "size": desc.size}
        _copy_blob(Path(layer.oci) / BLOB, out, blob, verify=False)
        layers.append(blob | {"annotations": {LABEL_PREFIX + "layer": desc.install_target}})
        diff_ids.append(desc.diff_id)
        if history is not None:
            history.append(
                {
                    "created": CREATED,
                    "created_by": f"rules_venvstacks: {metadata['kind']} layer "
                    f"{desc.install_target} ({metadata['label']})",
                }
            )
    image_config = {
        "created": CREATED,
        "architecture": target.oci_architecture,
        "os": "linux",
        "config": _run_config(config, base_config, app, [metadata for _, metadata in stack]),
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        **({"history": history} if history else {}),
    }
    config_blob = _write_json_blob(out, image_config, "config")
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST, "config": descriptor(CONFIG, config_blob), "layers": layers}
    manifest_blob = _write_json_blob(out, manifest, "manifest")
    platform_fields = {"architecture": target.oci_architecture, "os": "linux"}
    entry = descriptor(MANIFEST, manifest_blob) | {"platform": platform_fields, "annotations": {REF_NAME: config.tag}}
    index = {"schemaVersion": 2, "mediaType": INDEX, "manifests": [entry]}
    _write_document(out / "index.json", index, "index")
    _write_document(out / "oci-layout", {"imageLayoutVersion": LAYOUT_VERSION}, "layout")
    return manifest


def _check_stack(config: LayoutConfig, stack: list[tuple[Any, dict[str, Any]]]) -> dict[str, Any]:
    """The application's metadata, once the layers are known to be its stack, lowest first, at the prefix."""
    app = stack[-1][1]
    expected = [*reversed(lower_layers(app)), app["install_target"]]
    found = [metadata["install_target"] for _, metadata in stack]
    if app["kind"] != "application" or found != expected:
        raise ImageError(
            f"{config.label}: the layers given ({', '.join(found)}) are not an application's stack "
            f"({', '.join(expected)})"
        )
    for desc, metadata in stack:
        if desc.install_target != metadata["install_target"] or desc.prefix != config.prefix:
            raise ImageError(
                f"{config.label}: the image layer of {metadata['install_target']} is "
                f"{desc.install_target} at {desc.prefix}, not at {config.prefix}"
            )
        if metadata["target_platform"] != config.platform:
            raise ImageError(f"{config.label}: {metadata['install_target']} is built for {metadata['target_platform']}")
    return app


def _run_config(
    config: LayoutConfig, base: dict[str, Any], app: dict[str, Any], stack: list[dict[str, Any]]
) -> dict[str, Any]:
    """The image's `config`: the base's, with the entrypoint running the launch module, PATH and Env, labels."""
    app_dir = f"{config.prefix}/{app['install_target']}"
    env = dict(item.split("=", 1) if "=" in item else (item, "") for item in base.get("Env") or [])
    env["PATH"] = f"{app_dir}/bin:{env.get('PATH') or DEFAULT_PATH}"
    env |= config.env
    layers = [{key: m[key] for key in ("install_target", "lock_version", "requirements_hash")} for m in stack]
    labels = dict(base.get("Labels") or {}) | {
        LABEL_PREFIX + "layers": json.dumps(layers, separators=(",", ":")),
        LABEL_PREFIX + "launch_module": app["app_launch_module"],
        LABEL_PREFIX + "platform": config.platform,
    }
    inherited = {key: value for key, value in base.items() if key not in ("Entrypoint", "Cmd", "Env", "Labels")}
    run_config = inherited | {
        "Entrypoint": [f"{app_dir}/bin/python", "-m", app["app_launch_module"]],
        "Env": [f"{key}={value}" for key, value in env.items()],
        "Labels": labels,
    }
    return run_config | ({"Cmd": list(config.cmd)} if config.cmd else {})


def _copy_blob(source: Path, out: Path, desc: dict[str, Any], *, verify: bool) -> None:
    """Copies a blob into the layout `out` (once), checking its size, and its digest when `verify`."""
    dest = blob_path(out, desc["digest"])
    if dest.exists():
        return
    if not source.is_file():
        raise ImageError(f"blob {desc['digest']} is missing: {source}")
    shutil.copyfile(source, dest)
    if dest.stat().st_size != desc["size"]:
        raise ImageError(f"{source}: {dest.stat().st_size} bytes, but its descriptor says {desc['size']}")
    if verify:
        with dest.open("rb") as fh:
            actual = "sha256:" + hashlib.file_digest(fh, "sha256").hexdigest()
        if actual != desc["digest"]:
            raise ImageError(f"{source}: its sha256 is {actual}, but its descriptor says {desc['digest']}")


def _write_json_blob(out: Path, document: dict[str, Any], kind: str) -> bytes:
    """Stores a document as a blob of the layout, after checking it against its OCI schema."""
    problems = schema_problems(kind, document, f"the image's {kind}")
    if problems:
        raise ImageError("; ".join(problems))  # a bug here, not the user's
    data = canonical_json(document)
    blob_path(out, "sha256:" + hashlib.sha256(data).hexdigest()).write_bytes(data)
    return data


def _write_document(path: Path, document: dict[str, Any], kind: str) -> None:
    problems = schema_problems(kind, document, path.name)
    if problems:
        raise ImageError("; ".join(problems))
    path.write_bytes(canonical_json(document))


def write_tarball(layout: Path, out: Path) -> None:
    """The layout as an uncompressed tar of its files (index.json at the top), deterministically.

    Not archive.write_archive: that puts every member under one top directory and compresses, while readers of
    OCI archives want index.json at the root, and the blobs are compressed already."""
    names = [
        Path(directory, name).relative_to(layout).as_posix()
        for directory, dirnames, filenames in os.walk(layout, followlinks=True)  # however the input was staged
        for name in dirnames + filenames
    ]
    partial = out.with_name(out.name + ".partial")
    with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tar:
        for name in sorted(names, key=lambda name: name.split("/")):
            path = layout / name
            info = tarfile.TarInfo(name)
            info.mtime, info.uid, info.gid, info.uname, info.gname = FIXED_MTIME, 0, 0, "", ""
            mode = path.stat().st_mode  # a staged input is a symlink to the real file: follow it
            if stat.S_ISDIR(mode):
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.mode, info.size = 0o644, path.stat().st_size
                with path.open("rb") as fh:
                    tar.addfile(info, fh)
    partial.replace(out)
