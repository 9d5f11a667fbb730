"""Reports on published stacks, with the real Bazel: SBOMs next to each layer's metadata (valid against the official
CycloneDX 1.6 schema), the diff between two published versions of a stack, and the size and sharing report,
rendered by a real headless Chromium.

The small stack gets a second application over its framework and a `stack_report`; it is locked and built, its
published layers are kept, then one application's requirements change, and it is relocked and built again.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from harness import WORKSPACES, Workspace, copy_workspace, open_archive
from referencing import Registry, Resource
from stacktool.metadata import lower_layers, read_metadata
from stacktool.size_report import PALETTE

SCHEMAS = Path(__file__).resolve().parents[2] / "python" / "stacktool" / "schemas" / "cyclonedx"
LAYERS = {"cpython": "cpython", "base": "framework-base", "hello": "app-hello", "greet": "app-greet"}

BUILD = """
application_layer(
    name = "greet",
    frameworks = [":base"],
    launch_module = "hello.py",
)

stack_report(
    name = "report",
    apps = [
        ":hello",
        ":greet",
    ],
)
"""


@dataclass
class Stack:
    ws: Workspace
    old: (
        Path  # the first build's published layers: <target>.layer/<install_target>-linux_x86_64.{json,tar.zst,cdx.json}
    )
    new: Path  # bazel-bin/stacks after the second build


def build(ws: Workspace) -> None:
    ws.bazel("run", "//stacks:lock")
    ws.bazel("build", "//stacks:hello", "//stacks:greet", "//stacks:report")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("stack_reports")
    ws = copy_workspace(WORKSPACES / "small_stack", base / "ws", base / "output_base")
    stacks = ws.path / "stacks"
    text = (stacks / "BUILD.bazel").read_text().replace('"stack_lock")', '"stack_lock", "stack_report")')
    text = text.replace('layers = [":hello"],', 'layers = [\n        ":greet",\n        ":hello",\n    ],')
    (stacks / "BUILD.bazel").write_text(text + BUILD)
    build(ws)
    old = base / "old"  # what was published, kept (the next build replaces bazel-bin's files)
    for layer in LAYERS:
        source = ws.path / "bazel-bin" / "stacks" / f"{layer}.layer"
        (old / source.name).mkdir(parents=True)
        for published in source.glob("*-linux_x86_64.*"):
            shutil.copy(published, old / source.name / published.name)
    shutil.copy(ws.path / "bazel-bin" / "stacks" / "report.html", old / "report.html")
    shutil.copy(ws.path / "bazel-bin" / "stacks" / "report.json", old / "report.json")
    (stacks / "BUILD.bazel").write_text((stacks / "BUILD.bazel").read_text().replace(
        'requirements = ["six"],', 'requirements = [\n        "six",\n        "tabulate==0.9.0",\n    ],'
    ))  # fmt: skip
    build(ws)
    yield Stack(ws, old, ws.path / "bazel-bin" / "stacks")
    ws.discard()


def published(directory: Path, layer: str, suffix: str) -> Path:
    return directory / f"{layer}.layer" / f"{LAYERS[layer]}-linux_x86_64{suffix}"


def official_validator() -> jsonschema.Draft7Validator:
    schemas = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in SCHEMAS.glob("*.schema.json")}
    registry: Registry[Any] = Registry().with_resources(
        (f"http://cyclonedx.org/schema/{name}", Resource.from_contents(s)) for name, s in schemas.items()
    )
    return jsonschema.Draft7Validator(
        schemas["bom-1.6.schema.json"], registry=registry, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )


def test_each_layer_publishes_a_valid_sbom_next_to_its_metadata(stack: Stack) -> None:
    validator = official_validator()
    for layer in LAYERS:
        metadata = read_metadata(published(stack.new, layer, ".json"))
        sbom = json.loads(published(stack.new, layer, ".cdx.json").read_text(encoding="utf-8"))
        assert [e.message for e in validator.iter_errors(sbom)] == [], layer
        assert sbom["metadata"]["timestamp"] == metadata["locked_at"]
        assert sbom["metadata"]["component"]["hashes"][0]["content"] == metadata["archive_hashes"]["sha256"]
        libraries = {c["name"]: c for c in sbom["components"] if c["type"] == "library"}
        assert sorted(libraries) == sorted(p["name"] for p in metadata["packages"])
        for package in metadata["packages"]:
            component = libraries[package["name"]]
            assert component["purl"] == f"pkg:pypi/{package['name']}@{package['version']}?file_name={package['wheel']}"
            assert component["hashes"] == [{"alg": "SHA-256", "content": package["sha256"]}]
        (runtime,) = [c for c in sbom["components"] if c["bom-ref"].startswith("runtime:")]
        assert "cpython@" + runtime["version"] == metadata["python_implementation"]
        assert runtime["hashes"][0]["content"] == metadata["runtime_archive"]["sha256"]
        refs = sbom["dependencies"][0]["dependsOn"]
        assert [r for r in refs if r.startswith("layer:")] == ["layer:" + t for t in lower_layers(metadata)]
    hello = json.loads(published(stack.new, "hello", ".cdx.json").read_text(encoding="utf-8"))
    assert "pkg:pypi/tabulate@0.9.0?file_name=tabulate-0.9.0-py3-none-any.whl" in hello["dependencies"][0]["dependsOn"]
    # The layer's output group and its files: the SBOMs of the layer and of every layer below it.
    query = stack.ws.bazel("cquery", "//stacks:hello", "--output=files", "--output_groups=sboms").stdout.split()
    assert sorted(Path(p).name for p in query) == sorted(
        f"{t}-linux_x86_64.cdx.json" for t in LAYERS.values() if t != "app-greet"
    )


def installed_bytes(archive: Path) -> dict[str, int]:
    """Sizes of the archive's files, read with tarfile here (independently of the tool)."""
    with open_archive(archive) as tar:
        return {m.name.partition("/")[2]: m.size for m in tar if m.isfile()}


def test_the_diff_of_the_two_published_versions(stack: Stack) -> None:
    result = stack.ws.bazel("run", "@rules_venvstacks//rules:diff", "--", str(stack.old), "bazel-bin/stacks", "--json")
    diff = json.loads(result.stdout)
    statuses = {layer["layer_name"]: layer["status"] for layer in diff["layers"]}
    assert statuses == {"cpython": "unchanged", "framework-base": "unchanged", "app-greet": "unchanged",
                        "app-hello": "changed"}  # fmt: skip
    (hello,) = [layer for layer in diff["layers"] if layer["layer_name"] == "app-hello"]
    new_metadata = read_metadata(published(stack.new, "hello", ".json"))
    (tabulate,) = [p for p in new_metadata["packages"] if p["name"] == "tabulate"]
    assert hello["packages"] == {"added": [tabulate], "removed": [], "changed": []}
    old_files = installed_bytes(published(stack.old, "hello", ".tar.zst"))
    new_files = installed_bytes(published(stack.new, "hello", ".tar.zst"))
    added = [f["path"] for f in hello["files"]["added"] if f["kind"] == "file"]
    assert added == sorted(new_files.keys() - old_files.keys())
    assert "lib/python3.11/site-packages/tabulate/__init__.py" in added
    assert "bin/tabulate" in added  # its console script
    assert hello["files"]["removed"] == []
    changed = {f["path"] for f in hello["files"]["changed"]}
    assert "share/venvstacks/layer.json" in changed  # the record lists the new package
    installed = hello["bytes"]["installed_size"]
    assert (installed["old"], installed["new"]) == (sum(old_files.values()), sum(new_files.values()))
    archive = hello["bytes"]["archive_size"]
    assert archive["new"] == published(stack.new, "hello", ".tar.zst").stat().st_size
    assert archive["old"] == published(stack.old, "hello", ".tar.zst").stat().st_size
    assert hello["metadata"]["requirements_hash"]["new"] == new_metadata["requirements_hash"]

    text = stack.ws.bazel("run", "@rules_venvstacks//rules:diff", "--", str(stack.old), "bazel-bin/stacks").stdout
    lines = text.splitlines()
    assert "app-hello (linux_x86_64): changed" in lines and "cpython (linux_x86_64): unchanged" in lines
    assert "    + tabulate 0.9.0 (tabulate-0.9.0-py3-none-any.whl)" in lines
    assert lines[-1].startswith("layers: 1 changed, 0 added, 0 removed, 3 unchanged; archives +")


@dataclass
class Png:
    width: int
    height: int
    pixels: list[bytes]  # rows of RGB(A) bytes


def read_png(path: Path) -> Png:
    """An 8-bit RGB or RGBA PNG, decoded with zlib (no imaging library)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, offset = {}, 8
    idat = b""
    while offset < len(data):
        (length,), kind = struct.unpack(">I", data[offset : offset + 4]), data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        idat += body if kind == b"IDAT" else b""
        chunks.setdefault(kind, body)
        offset += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert depth == 8 and colour in (2, 6), (depth, colour)
    channels = 3 if colour == 2 else 4
    raw, stride, rows, previous = zlib.decompress(idat), width * channels, [], bytes(width * channels)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        rows.append(bytes(line))
        previous = rows[-1]
    return Png(width, height, [b"".join(row[i : i + 3] for i in range(0, stride, channels)) for row in rows])


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's Chromium, installed when absent."""
    if shutil.which("chromium") is None:
        install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"]
        if subprocess.run(install, capture_output=True, check=False).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], capture_output=True, check=True)
            subprocess.run(install, capture_output=True, check=True)
    found = shutil.which("chromium")
    assert found, "chromium is not installed"
    return found


def headless(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
    ]  # fmt: skip
    return subprocess.run([chromium, *flags, *args], capture_output=True, text=True, timeout=120, check=True)


def test_the_report_renders_in_chromium(stack: Stack, chromium: str, tmp_path: Path) -> None:
    page = stack.new / "report.html"
    report = json.loads((stack.new / "report.json").read_text(encoding="utf-8"))
    layers = {layer["install_target"]: layer for layer in report["layers"]}
    assert list(layers) == ["cpython", "framework-base", "app-greet", "app-hello"]
    assert layers["framework-base"]["apps"] == ["app-hello", "app-greet"]
    hello_archive = published(stack.new, "hello", ".tar.zst")
    assert layers["app-hello"]["installed_size"] == sum(installed_bytes(hello_archive).values())
    assert layers["app-hello"]["archive_size"] == hello_archive.stat().st_size
    totals = report["totals"]
    shared = layers["cpython"]["installed_size"] + layers["framework-base"]["installed_size"]
    assert totals["saved_installed_size"] == shared  # each app alone would install the runtime and framework
    old = json.loads((stack.old / "report.json").read_text(encoding="utf-8"))
    assert report["apps"][0]["installed_size"] > old["apps"][0]["installed_size"]  # hello now has tabulate

    dom = headless(chromium, tmp_path / "profile", "--dump-dom", page.as_uri()).stdout
    for name in layers:
        assert f"<td>{name}</td>" in dom
    assert "<svg" in dom and "sharing saves" in dom
    screenshot = tmp_path / "report.png"
    headless(chromium, tmp_path / "profile", f"--screenshot={screenshot}", "--window-size=1200,900", page.as_uri())
    png = read_png(screenshot)
    assert (png.width, png.height) == (1200, 900)
    colours = {row[i : i + 3] for row in png.pixels for i in range(0, len(row), 3)}
    assert len(colours) > 50  # text, anti-aliasing, bars: not a blank page
    for colour in PALETTE[:4]:  # the bars of the four layers, drawn from the SVG
        assert bytes.fromhex(colour[1:]) in colours, colour
    white = sum(row[i : i + 3] == b"\xff\xff\xff" for row in png.pixels for i in range(0, len(row), 3))
    assert white < 0.97 * png.width * png.height
