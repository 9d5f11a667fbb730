"""Where `stacktool deploy install` reads a published stack version from: a publish directory or its URL.

A published stack version is what `<bundle>.publish` writes (stacktool.publish): the stack summary
`__venvstacks__/venvstacks[-<platform>].json` and the archives it names, beside it. A directory is read in place
(no network); a URL (http, https, file) is read with urllib, and only the archives a target does not hold yet are
downloaded. Every archive is checked against the sha256 the summary gives before anything unpacks it.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stacktool.deploy import DeployError, verify_archive
from stacktool.metadata import MetadataError, lower_layers, validate
from stacktool.publish import SUMMARY_DIR, _names

_ORDER = ("runtimes", "frameworks", "applications")


@dataclass(frozen=True)
class PublishedStack:
    """One published stack version for one platform: where it is, its summary file and its layers, lowest first
    (every layer after the layers it needs)."""

    source: str
    summary_name: str
    layers: tuple[dict[str, Any], ...]

    @property
    def is_url(self) -> bool:
        return _is_url(self.source)

    def describe(self) -> str:
        return f"{self.source} ({self.summary_name})"

    def fetch(self, metadata: dict[str, Any], downloads: Path) -> Path:
        """The layer's archive as a local file, its sha256 checked: in place for a directory; downloaded into
        `downloads` (complete files only, renamed into place) for a URL."""
        name, expected = metadata["archive_name"], metadata["archive_hashes"]["sha256"]
        if not self.is_url:
            archive = Path(self.source) / name
            verify_archive(archive, expected, Path(self.source) / self.summary_name)
            return archive
        archive = downloads / f"{expected[:16]}-{name}"
        if not archive.is_file():
            downloads.mkdir(parents=True, exist_ok=True)
            _download(_join(self.source, name), archive, expected)
        verify_archive(archive, expected, _join(self.source, self.summary_name))
        return archive


def _is_url(source: str) -> bool:
    return urllib.parse.urlsplit(source).scheme in ("http", "https", "file")


def _join(url: str, name: str) -> str:
    return urllib.parse.urljoin(url.rstrip("/") + "/", urllib.parse.quote(name))


def _read_url(url: str) -> bytes | None:
    """The bytes at `url`, or None when there is nothing there."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            data: bytes = response.read()
            return data
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise DeployError(f"{url}: {error}") from error
    except urllib.error.URLError as error:
        if isinstance(error.reason, FileNotFoundError):
            return None
        raise DeployError(f"{url}: cannot read it ({error.reason}); check the URL and the network") from error


def _download(url: str, dest: Path, expected: str) -> None:
    """Downloads `url` into `dest` through a partial file renamed once complete and of the expected sha256."""
    partial = dest.with_name(f".{dest.name}.partial")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as response, partial.open("wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
    except (urllib.error.URLError, OSError) as error:
        partial.unlink(missing_ok=True)
        raise DeployError(f"{url}: download failed ({error}); run the command again to retry") from error
    if digest.hexdigest() != expected:
        partial.unlink()
        raise DeployError(f"{url} has sha256 {digest.hexdigest()}, but the stack summary says {expected}")
    os.replace(partial, dest)


def _summary_text(source: str, platform: str | None) -> tuple[str, bytes]:
    """(summary file name, its bytes): the platform's tagged summary, else the untagged one, else the only one."""
    untagged = _names("", False)[0]
    names = [_names(platform, True)[0], untagged] if platform else [untagged]
    for name in names:
        data = _read_url(_join(source, name)) if _is_url(source) else _read_file(Path(source) / name)
        if data is not None:
            return name, data
    if not _is_url(source) and platform is None:
        found = sorted(p.name for p in (Path(source) / SUMMARY_DIR).glob("venvstacks-*.json"))
        if len(found) == 1:
            name = f"{SUMMARY_DIR}/{found[0]}"
            return name, (Path(source) / name).read_bytes()
        if found:
            platforms = ", ".join(f.removeprefix("venvstacks-").removesuffix(".json") for f in found)
            raise DeployError(f"{source} holds stacks for several platforms ({platforms}): pass --platform")
    hint = "" if platform else " (for tagged outputs, pass --platform)"
    raise DeployError(f"{source}: no published stack there: {names[0]} is missing{hint}")


def _read_file(path: Path) -> bytes | None:
    if not path.parent.parent.is_dir():
        raise DeployError(f"{path.parent.parent}: no such directory")
    return path.read_bytes() if path.is_file() else None


def _in_order(layers: list[dict[str, Any]], where: str) -> tuple[dict[str, Any], ...]:
    """The layers with every one after the layers it needs; refuses a layer whose lower layers are missing."""
    by_target = {m["install_target"]: m for m in layers}
    ordered: dict[str, dict[str, Any]] = {}

    def visit(metadata: dict[str, Any]) -> None:
        for lower in lower_layers(metadata):
            if lower not in by_target:
                raise DeployError(f"{where}: {metadata['install_target']} needs {lower}, which the summary lacks")
            if lower not in ordered:
                visit(by_target[lower])
        ordered.setdefault(metadata["install_target"], metadata)

    for metadata in layers:
        visit(metadata)
    return tuple(ordered.values())


def open_source(source: str, platform: str | None) -> PublishedStack:
    """Reads and checks the summary of the published stack at `source` (a directory or URL) for `platform`."""
    if not _is_url(source):
        source = str(Path(source).absolute())
    name, data = _summary_text(source, platform)
    where = f"{source}/{name}"
    try:
        groups = json.loads(data)["layers"]
        layers = [metadata for group in _ORDER for metadata in groups[group]]
    except (ValueError, KeyError, TypeError) as error:
        raise DeployError(f"{where}: not a stack summary ({error!r}); publish the stack again") from error
    for metadata in layers:
        archive = metadata.get("archive_name")
        if not archive:
            raise DeployError(
                f"{where}: {metadata.get('install_target')} has no archive (a local export?); install from the "
                "directory `<bundle>.publish` wrote"
            )
        try:
            validate(metadata, where)
        except MetadataError as error:
            raise DeployError(f"{error}; publish the stack again with this rules_venvstacks") from error
        if Path(archive).name != archive or archive in (".", ".."):
            raise DeployError(f"{where}: archive name {archive!r} of {metadata['install_target']} is not a file name")
    if not layers:
        raise DeployError(f"{where}: the summary lists no layers")
    other = sorted({m["target_platform"] for m in layers} - {platform or layers[0]["target_platform"]})
    if other:
        raise DeployError(f"{where}: layers for {', '.join(other)} where {platform} was asked for")
    return PublishedStack(source, name, _in_order(layers, where))
