"""The size and sharing report of a stack: what each layer weighs, what each application shares, and what the stack
saves against one virtual environment per application (the `stack-report` verb; docs/reports.md).

A layer's installed size is the sum of the sizes of the files in its archive (read here, member by member); an
application's "one venv" size is the sum of its layers' installed sizes, what it would install on its own. The
report is one self-contained HTML page (an inline SVG chart, tables, no script) plus the same numbers as JSON.
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import IO, Any

from stacktool.errors import UserError
from stacktool.metadata import lower_layers, read_metadata

REPORT_VERSION = 1
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")


class ReportError(UserError):
    """A layer or archive the report cannot read."""


@dataclass(frozen=True)
class Member:
    """One archive member, its path relative to the layer's top directory."""

    path: str
    kind: str  # "file", "dir" or "symlink"
    size: int  # bytes of a file's content (0 otherwise)
    digest: str  # sha256 of a file's content or a symlink's target when asked for, else ""


def _tar_stream(archive: Path, raw: IO[bytes]) -> IO[bytes]:
    if archive.name.endswith(".tar.zst"):
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)  # type: ignore[no-any-return]
    if archive.name.endswith(".tar.gz"):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if archive.name.endswith(".tar.xz"):
        return lzma.LZMAFile(raw, "rb")
    raise ReportError(f"{archive}: unknown archive format (expected .tar.zst, .tar.gz, .tar.xz or .zip)")


def _digest(stream: IO[bytes] | None) -> str:
    return hashlib.file_digest(stream, "sha256").hexdigest() if stream else ""  # type: ignore[arg-type]


def _relative(name: str) -> str:
    return name.strip("/").partition("/")[2]


def _tar_members(archive: Path, digests: bool) -> Iterator[Member]:
    with archive.open("rb") as raw, _tar_stream(archive, raw) as stream, tarfile.open(fileobj=stream, mode="r|") as tf:
        for info in tf:
            path = _relative(info.name)
            if info.isfile():
                yield Member(path, "file", info.size, _digest(tf.extractfile(info)) if digests else "")
            elif info.issym():
                yield Member(path, "symlink", 0, hashlib.sha256(info.linkname.encode()).hexdigest() if digests else "")
            elif info.isdir() and path:
                yield Member(path, "dir", 0, "")


def _zip_members(archive: Path, digests: bool) -> Iterator[Member]:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            path, mode = _relative(info.filename), info.external_attr >> 16 if info.create_system == 3 else 0
            if info.is_dir() or stat.S_ISDIR(mode):
                if path:
                    yield Member(path, "dir", 0, "")
            elif stat.S_ISLNK(mode):
                yield Member(path, "symlink", 0, hashlib.sha256(zf.read(info)).hexdigest() if digests else "")
            else:
                with zf.open(info) as content:
                    yield Member(path, "file", info.file_size, _digest(content) if digests else "")


def archive_members(archive: Path, *, digests: bool = False) -> list[Member]:
    """The members of a published layer archive (any of its formats), in archive order."""
    try:
        if archive.name.endswith(".zip"):
            return list(_zip_members(archive, digests))
        return list(_tar_members(archive, digests))
    except FileNotFoundError:
        raise ReportError(f"{archive}: no such file (the archive should be next to its metadata)") from None
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, lzma.LZMAError) as error:
        raise ReportError(f"{archive}: cannot read the archive: {error}") from None


def installed_size(members: list[Member]) -> int:
    """What a layer takes once unpacked: the sum of its files' sizes."""
    return sum(m.size for m in members if m.kind == "file")


def _layer(metadata_path: Path) -> dict[str, Any]:
    metadata = read_metadata(metadata_path)
    members = archive_members(metadata_path.parent / metadata["archive_name"])
    return {
        "install_target": metadata["install_target"],
        "layer_name": metadata["layer_name"],
        "kind": metadata["kind"],
        "platform": metadata["target_platform"],
        "depth": len(lower_layers(metadata)),
        "archive_size": metadata["archive_size"],
        "installed_size": installed_size(members),
        "files": sum(m.kind == "file" for m in members),
        "packages": len(metadata["packages"]),
    }


def stack_report(apps: list[list[Path]]) -> dict[str, Any]:
    """The report's numbers: per layer, per app (each a list of metadata files, lowest layer first) and in total."""
    layers: dict[str, dict[str, Any]] = {}
    report_apps = []
    for files in apps:
        stack = []
        for path in files:
            key = read_metadata(path)["install_target"]
            layer = layers.get(key) or layers.setdefault(key, _layer(path) | {"apps": []})
            stack.append(layer)
        name = stack[-1]["layer_name"]
        for layer in stack:
            layer["apps"].append(name)
        report_apps.append({"name": name, "layers": [layer["install_target"] for layer in stack]})
    for app in report_apps:
        stack = [layers[key] for key in app["layers"]]
        app["installed_size"] = sum(layer["installed_size"] for layer in stack)
        app["archive_size"] = sum(layer["archive_size"] for layer in stack)
        app["shared_size"] = sum(layer["installed_size"] for layer in stack if len(layer["apps"]) > 1)
        app["own_size"] = app["installed_size"] - app["shared_size"]
    ordered = sorted(layers.values(), key=lambda layer: (layer["depth"], layer["install_target"]))
    shared = sum(layer["installed_size"] for layer in ordered)
    separate = sum(app["installed_size"] for app in report_apps)
    totals = {
        "stack_installed_size": shared,
        "stack_archive_size": sum(layer["archive_size"] for layer in ordered),
        "one_venv_per_app_installed_size": separate,
        "one_venv_per_app_archive_size": sum(app["archive_size"] for app in report_apps),
        "saved_installed_size": separate - shared,
    }
    return {"report_version": REPORT_VERSION, "layers": ordered, "apps": report_apps, "totals": totals}


def human(size: int) -> str:
    """Bytes for people: `812 B`, `4.2 KiB`, `113.0 MiB`, `1.20 GiB`."""
    if size < 1024:
        return f"{size} B"
    for unit, scale in (("KiB", 1 << 10), ("MiB", 1 << 20)):
        if size < scale << 10:
            return f"{size / scale:.1f} {unit}"
    return f"{size / (1 << 30):.2f} GiB"


Segment = tuple[int, str, str]  # bytes, colour, tooltip


def _bars(rows: list[tuple[str, list[Segment], str]], scale: int, y: int, opacity: str = "1") -> tuple[list[str], int]:
    """SVG of horizontal bars, each a label, (bytes, colour, tooltip) segments and the text after it; the next y."""
    out = []
    for label, segments, after in rows:
        out.append(f'<text x="10" y="{y + 14}" class="label">{escape(label)}</text>')
        x = 250.0
        for size, colour, tip in segments:
            width = max(560 * size / scale, 2.0 if size else 0.0)  # a small layer stays visible
            out.append(
                f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="18" fill="{colour}" opacity="{opacity}">'
                f"<title>{escape(tip)}</title></rect>"
            )
            x += width
        out.append(f'<text x="{x + 6:.1f}" y="{y + 14}" class="value">{escape(after)}</text>')
        y += 24
    return out, y


def _svg(report: dict[str, Any]) -> str:
    """The chart: bytes per layer (installed, archive), then one venv per app against the shared stack."""
    layers, apps, totals = report["layers"], report["apps"], report["totals"]
    by_key = {layer["install_target"]: layer for layer in layers}
    colour = {key: PALETTE[i % len(PALETTE)] for i, key in enumerate(by_key)}

    def segment(key: str) -> Segment:
        return (by_key[key]["installed_size"], colour[key], f"{key}: {human(by_key[key]['installed_size'])}")

    parts = ['<text x="10" y="22" class="heading">Bytes per layer: installed (archive below, lighter)</text>']
    scale, y = max([layer["installed_size"] for layer in layers] + [1]), 36
    for key, layer in by_key.items():
        bars, y = _bars([(key, [segment(key)], human(layer["installed_size"]))], scale, y)
        archive = [(layer["archive_size"], colour[key], f"{key}: archive {human(layer['archive_size'])}")]
        light, y = _bars([("", archive, human(layer["archive_size"]) + " archive")], scale, y - 4, "0.45")
        parts += bars + light
        y += 6
    y += 20
    parts.append(f'<text x="10" y="{y}" class="heading">One venv per app against the shared stack (installed)</text>')
    rows: list[tuple[str, list[Segment], str]] = [
        (
            f"{app['name']} (one venv)",
            [segment(key) for key in app["layers"]],
            f"{human(app['installed_size'])}: shares {human(app['shared_size'])}, its own {human(app['own_size'])}",
        )
        for app in apps
    ]
    separate, shared = totals["one_venv_per_app_installed_size"], totals["stack_installed_size"]
    rows.append(("one venv per app, all", [seg for _, segments, _ in rows for seg in segments], human(separate)))
    rows.append(("shared stack", [segment(key) for key in by_key], human(shared)))
    bars, y = _bars(rows, max(separate, 1), y + 14)
    parts += bars
    x = 10
    for key in by_key:  # the legend: which colour is which layer
        parts.append(f'<rect x="{x}" y="{y + 6}" width="12" height="12" fill="{colour[key]}"/>')
        parts.append(f'<text x="{x + 17}" y="{y + 17}" class="label">{escape(key)}</text>')
        x += 30 + 8 * len(key)
    height = y + 30
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="1100" height="{height}" viewBox="0 0 1100 {height}" '
        f'role="img" aria-label="Layer sizes and sharing">' + "".join(parts) + "</svg>"
    )


STYLE = """
body { font-family: sans-serif; margin: 24px; color: #222; }
table { border-collapse: collapse; margin: 12px 0 24px; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: left; }
td.n { text-align: right; }
svg text.heading { font-weight: bold; font-size: 15px; }
svg text.label, svg text.value { font-size: 13px; }
.summary { font-size: 17px; }
"""


def _cell(text: str) -> str:
    """A table cell; numbers and sizes right-aligned."""
    return f'<td class="n">{escape(text)}</td>' if text[:1].isdigit() else f"<td>{escape(text)}</td>"


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(report: dict[str, Any], title: str) -> str:
    """The report as one HTML page: a summary line, the chart, a table of layers and one of apps."""
    totals = report["totals"]
    separate, shared = totals["one_venv_per_app_installed_size"], totals["stack_installed_size"]
    saved = f"{100 * (separate - shared) / separate:.0f}%" if separate else "0%"
    summary = (
        f"Shared stack: {human(shared)} installed ({human(totals['stack_archive_size'])} of archives); one venv per "
        f"app: {human(separate)} installed ({human(totals['one_venv_per_app_archive_size'])} of archives); "
        f"sharing saves {human(separate - shared)} ({saved})."
    )
    layer_rows = [
        [
            layer["install_target"], layer["kind"], layer["platform"], ", ".join(layer["apps"]),
            str(layer["packages"]), str(layer["files"]), human(layer["archive_size"]), human(layer["installed_size"]),
        ]
        for layer in report["layers"]
    ]  # fmt: skip
    app_rows = [
        [app["name"], " + ".join(app["layers"]), human(app["shared_size"]), human(app["own_size"]),
         human(app["installed_size"]), human(app["archive_size"])]
        for app in report["apps"]
    ]  # fmt: skip
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>Stack report: {escape(title)}</title><style>{STYLE}</style></head><body>",
            f"<h1>Stack report: {escape(title)}</h1>",
            f'<p class="summary">{escape(summary)}</p>',
            _svg(report),
            "<h2>Layers</h2>",
            _table(["layer", "kind", "platform", "used by", "packages", "files", "archive", "installed"], layer_rows),
            "<h2>Applications</h2>",
            _table(["application", "layers (lowest first)", "shared", "its own", "one venv", "archives"], app_rows),
            "</body></html>",
            "",
        ]
    )
