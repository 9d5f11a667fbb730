"""The publish and export verbs: a stack_bundle's layers laid out as venvstacks publishes them (docs/deploy.md).

publish DIR, per platform of the bundle:
- each layer's archive, as `<install_target>.<format>`, or with `--tag-outputs`
  `<install_target>-<platform>-<archive_build>.<format>` (venvstacks' tagged names), with its CycloneDX SBOM beside
  it (`<archive name without its format>.cdx.json`);
- `__venvstacks__/env_metadata/<layer_name>[-<platform>].json`: the layer's metadata as published (archive_name and
  archive_build added);
- `__venvstacks__/venvstacks[-<platform>].json`: the stack summary, `{"layers": {"runtimes": [...], "frameworks":
  [...], "applications": [...]}}`, written last, so a summary always names complete files.

archive_build counts the archives of one install target published into DIR: it stays when the same bytes are
published again, goes up when other bytes are, and starts at 1 for a new install target (a new lock version).
An archive already in DIR under the same name with other bytes is refused before anything is written.

export DIR: the host platform's layers of the bundle deployed into DIR (unpacked, postinstall run), with the summary
and env_metadata files without archive fields, like venvstacks' `local-export`.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stacktool.archive import FORMATS
from stacktool.digest import sha256_of
from stacktool.errors import UserError
from stacktool.metadata import read_metadata, validate
from stacktool.sbom import sbom_path

SUMMARY_DIR = "__venvstacks__"
METADATA_DIR = f"{SUMMARY_DIR}/env_metadata"
GROUPS = {"runtime": "runtimes", "framework": "frameworks", "application": "applications"}
ARCHIVE_FIELDS = ("archive_build", "archive_hashes", "archive_name", "archive_size")


class PublishError(UserError):
    """A bundle that cannot be published or exported as asked; the message names the file and the fix."""


@dataclass(frozen=True)
class BundledLayer:
    """One layer of a stack_bundle for one platform: its metadata file (archive and SBOM beside it)."""

    metadata_file: Path
    metadata: dict[str, Any]

    @property
    def archive(self) -> Path:
        return self.metadata_file.parent / self.metadata["archive_name"]

    @property
    def format(self) -> str:
        return next(f for f in FORMATS if self.metadata["archive_name"].endswith("." + f))


def bundle_layers(manifest: Path) -> dict[str, list[BundledLayer]]:
    """platform -> the bundle's layers for it, lowest first, read from the bundle's manifest.json."""
    try:
        platforms = json.loads(manifest.read_text(encoding="utf-8"))["platforms"]
    except (OSError, ValueError, KeyError) as error:
        raise PublishError(f"{manifest}: not a stack_bundle manifest ({error})") from error
    layers: dict[str, list[BundledLayer]] = {}
    for platform, entry in sorted(platforms.items()):
        files = [manifest.parent / platform / name for name in entry["deploy_order"]]
        layers[platform] = [BundledLayer(f, read_metadata(f)) for f in files]
        for layer in layers[platform]:
            if layer.metadata["kind"] not in GROUPS:
                raise PublishError(f"{layer.metadata_file.name}: a {layer.metadata['kind']} layer is never published")
    return layers


def _names(platform: str, tag_outputs: bool) -> tuple[str, str]:
    """(summary file, env_metadata suffix) for a platform."""
    suffix = f"-{platform}" if tag_outputs else ""
    return f"{SUMMARY_DIR}/venvstacks{suffix}.json", suffix


def _summary(published: list[dict[str, Any]]) -> dict[str, Any]:
    groups: dict[str, list[dict[str, Any]]] = {group: [] for group in sorted(GROUPS.values())}
    for metadata in published:
        groups[GROUPS[metadata["kind"]]].append(metadata)
    return {"layers": groups}


def _dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def _archive_build(previous: dict[str, Any] | None, metadata: dict[str, Any]) -> int:
    if previous is None or previous["install_target"] != metadata["install_target"]:
        return 1
    same = previous["archive_hashes"] == metadata["archive_hashes"]
    return int(previous["archive_build"]) + (0 if same else 1)


def _previous(out: Path, name: str) -> dict[str, Any] | None:
    path = out / name
    return read_metadata(path) if path.exists() else None


@dataclass(frozen=True)
class _Copy:
    source: Path
    dest: str  # relative to the output directory


Plan = tuple[list[_Copy], dict[str, str]]


def _plan(layers: list[BundledLayer], platform: str, out: Path, tag_outputs: bool) -> Plan:
    """What publishing one platform writes: files to copy, and text files (env_metadata, then the summary last)."""
    summary_name, suffix = _names(platform, tag_outputs)
    copies: list[_Copy] = []
    texts: dict[str, str] = {}
    published = []
    for layer in layers:
        metadata = layer.metadata
        metadata_name = f"{METADATA_DIR}/{metadata['layer_name']}{suffix}.json"
        build = _archive_build(_previous(out, metadata_name), metadata)
        stem = f"{metadata['install_target']}-{platform}-{build}" if tag_outputs else metadata["install_target"]
        entry = metadata | {"archive_name": f"{stem}.{layer.format}", "archive_build": build}
        validate(entry, metadata_name)
        published.append(entry)
        copies.append(_Copy(layer.archive, entry["archive_name"]))
        copies.append(_Copy(sbom_path(layer.metadata_file), f"{stem}.cdx.json"))
        texts[metadata_name] = _dumps(entry)
    texts[summary_name] = _dumps(_summary(published))
    return copies, texts


def _check_sources(layers: list[BundledLayer]) -> None:
    for layer in layers:
        for path in (layer.archive, sbom_path(layer.metadata_file)):
            if not path.exists():
                raise PublishError(f"{path} is missing; build the bundle first")
        expected = layer.metadata["archive_hashes"]["sha256"]
        if sha256_of(layer.archive) != expected:
            raise PublishError(f"{layer.archive}: its sha256 is not {expected}, as {layer.metadata_file.name} says")


def _refuse_overwrites(copies: list[_Copy], out: Path) -> None:
    for copy in copies:
        dest = out / copy.dest
        if dest.exists() and sha256_of(dest) != sha256_of(copy.source):
            raise PublishError(
                f"{dest} exists with other bytes: publish into a new directory, or use --tag-outputs so that each "
                "build of a layer gets its own archive name"
            )


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def _copy(source: Path, dest: Path) -> None:
    if dest.exists():
        return  # the same bytes (checked before anything was written)
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.partial")
    shutil.copyfile(source, partial)
    os.replace(partial, dest)


def publish(manifest: Path, out: Path, *, platforms: list[str], tag_outputs: bool, dry_run: bool) -> dict[str, Any]:
    """Publishes the bundle's layers into `out` (see the module docstring); returns platform -> its summary."""
    bundle = bundle_layers(manifest)
    chosen = platforms or sorted(bundle)
    unknown = sorted(set(chosen) - set(bundle))
    if unknown:
        raise PublishError(f"{manifest}: the bundle has no {', '.join(unknown)} (it has {', '.join(sorted(bundle))})")
    if len(chosen) > 1 and not tag_outputs:
        raise PublishError(
            f"{manifest}: publishing {len(chosen)} platforms into one directory needs --tag-outputs (or one --platform)"
        )
    plans = {platform: _plan(bundle[platform], platform, out, tag_outputs) for platform in chosen}
    summaries = {p: json.loads(texts[_names(p, tag_outputs)[0]]) for p, (_, texts) in plans.items()}
    if dry_run:
        return summaries
    for platform in chosen:
        _check_sources(bundle[platform])
        _refuse_overwrites(plans[platform][0], out)
    for copies, texts in plans.values():
        for copy in copies:
            _copy(copy.source, out / copy.dest)
        for name, text in texts.items():  # env_metadata first, the summary last
            _write_text(out / name, text)
    return summaries


def export(manifest: Path, out: Path, platform: str) -> list[Path]:
    """Deploys the bundle's `platform` layers into `out` and writes venvstacks' export summary; returns the layers'
    directories, lowest first."""
    from stacktool.deploy import deploy

    bundle = bundle_layers(manifest)
    if platform not in bundle:
        raise PublishError(
            f"{manifest}: the bundle has no layers for this machine ({platform}); add {platform!r} to its platforms"
        )
    layers = bundle[platform]
    deployed = deploy([layer.metadata_file for layer in layers], out, incremental=True)
    exported = [{k: v for k, v in layer.metadata.items() if k not in ARCHIVE_FIELDS} for layer in layers]
    for metadata in exported:
        _write_text(out / f"{METADATA_DIR}/{metadata['layer_name']}.json", _dumps(metadata))
    _write_text(out / f"{SUMMARY_DIR}/venvstacks.json", _dumps(_summary(exported)))
    return [layer.path for layer in deployed]
