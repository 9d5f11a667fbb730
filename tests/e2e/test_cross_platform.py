"""Every target platform from this Linux host, in one build: the MLX example for Linux, macOS and Windows."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard
from harness import BAZEL, EXAMPLES, Workspace, copy_workspace
from runtime_fixtures import make_fixture_runtime
from stacktool.digest import sha256_of

PLATFORMS = ("linux_x86_64", "macosx_arm64", "win_amd64")
ENV_NAMES = ("cpython3_11", "framework-mlx", "app-mlx_app")


@pytest.fixture(scope="module")
def cross(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    base = tmp_path_factory.mktemp("cross")
    runtimes = base / "runtimes"
    runtimes.mkdir()
    root = Path(subprocess.run([str(BAZEL), "--print-root"], capture_output=True, text=True, check=True).stdout.strip())
    for local in (root / "opt/venvstacks/runtimes").glob("cpython-3.11.*-x86_64-unknown-linux-gnu-*.tar.gz"):
        shutil.copy(local, runtimes)
    for platform in ("macosx_arm64", "win_amd64"):
        make_fixture_runtime(runtimes, platform)
    ws = copy_workspace(EXAMPLES / "mlx", base / "mlx", base / "output_base")
    # The same local-archive override users have, pointed at the fixtures (and the real local Linux runtime).
    (ws.path / "user.bazelrc").write_text(f"common --repo_env=VENVSTACKS_LOCAL_RUNTIMES={runtimes}\n")
    ws.bazel("build", "//stacks:all_platforms")
    yield ws
    ws.discard()


def bundle(ws: Workspace, platform: str, name: str) -> Path:
    return ws.path / "bazel-bin" / "stacks" / "all_platforms" / platform / name


def archive_files(path: Path) -> dict[str, bytes]:
    with (
        path.open("rb") as raw,
        zstandard.ZstdDecompressor().stream_reader(raw) as stream,
        tarfile.open(fileobj=stream, mode="r|") as tar,
    ):
        return {m.name: (tar.extractfile(m).read() if m.isfile() else b"") for m in tar}  # type: ignore[union-attr]


def test_one_build_publishes_every_platform(cross: Workspace) -> None:
    manifest = json.loads((cross.path / "bazel-bin/stacks/all_platforms/manifest.json").read_text())
    assert sorted(manifest["platforms"]) == sorted(PLATFORMS)
    for platform in PLATFORMS:
        order = [f"{env}-{platform}.json" for env in ENV_NAMES]
        assert manifest["platforms"][platform]["deploy_order"] == order
        for env in ENV_NAMES:
            metadata = json.loads(bundle(cross, platform, f"{env}-{platform}.json").read_text())
            assert metadata["target_platform"] == platform
            archive = bundle(cross, platform, f"{env}-{platform}.tar.zst")
            assert metadata["archive_hashes"]["sha256"] == sha256_of(archive)


def test_macos_layer_has_macos_wheels_and_no_linux_binaries(cross: Workspace) -> None:
    files = archive_files(bundle(cross, "macosx_arm64", "framework-mlx-macosx_arm64.tar.zst"))
    site = "framework-mlx/lib/python3.11/site-packages"
    assert f"{site}/mlx/core.cpython-311-darwin.so" in files
    assert any(n.startswith(f"{site}/mlx_metal-0.32.4.dist-info/") for n in files)
    assert any(n.startswith(f"{site}/mlx/lib/") and n.endswith(".dylib") for n in files)
    assert not any(n.endswith(".so") and not n.endswith("-darwin.so") for n in files)
    assert not any(data.startswith(b"\x7fELF") for data in files.values())
    metadata = json.loads(bundle(cross, "macosx_arm64", "framework-mlx-macosx_arm64.json").read_text())
    wheels = {p["name"]: p["wheel"] for p in metadata["packages"]}
    assert wheels == {
        "mlx": "mlx-0.32.4-cp311-cp311-macosx_14_0_arm64.whl",
        "mlx-metal": "mlx_metal-0.32.4-py3-none-macosx_14_0_arm64.whl",
    }
    assert (
        "DYLD_LIBRARY_PATH"
        in archive_files(bundle(cross, "macosx_arm64", "app-mlx_app-macosx_arm64.tar.zst"))[
            "app-mlx_app/bin/python"
        ].decode()
    )


def test_windows_layers_use_the_windows_layout(cross: Workspace) -> None:
    framework = archive_files(bundle(cross, "win_amd64", "framework-mlx-win_amd64.tar.zst"))
    assert "framework-mlx/Lib/site-packages/mlx/core.cp311-win_amd64.pyd" in framework
    assert not any(n.startswith("framework-mlx/lib/") or n.startswith("framework-mlx/bin/") for n in framework)
    launchers = {n: d for n, d in framework.items() if n.startswith("framework-mlx/Scripts/") and n.endswith(".exe")}
    assert "framework-mlx/Scripts/python.exe" in launchers  # the runtime's venv launcher
    scripts = [d for n, d in launchers.items() if not n.endswith(("/python.exe", "/pythonw.exe"))]
    assert scripts and all(d.startswith(b"MZ") and b"#!python.exe" in d for d in scripts)  # console-script launchers
    app = archive_files(bundle(cross, "win_amd64", "app-mlx_app-win_amd64.tar.zst"))
    assert "app-mlx_app/Lib/site-packages/report_mlx_version.py" in app
    config = json.loads(app["app-mlx_app/Lib/site-packages/_venvstacks_layers.json"])
    assert config["site_packages"] == [
        "../../../framework-mlx/Lib/site-packages",
        "../../../cpython3_11/Lib/site-packages",
    ]
    assert "app-mlx_app/bin/python" not in app


def test_linux_archives_alone_and_in_the_bundle_are_identical(cross: Workspace) -> None:
    cross.bazel("build", "//stacks:mlx_app")
    for env, layer in zip(ENV_NAMES, ("cpython3_11", "mlx", "mlx_app"), strict=True):
        alone = cross.path / "bazel-bin" / "stacks" / f"{layer}.layer" / f"{env}-linux_x86_64.tar.zst"
        assert sha256_of(alone) == sha256_of(bundle(cross, "linux_x86_64", f"{env}-linux_x86_64.tar.zst")), env


def test_layer_tests_of_other_platforms_are_skipped_here(cross: Workspace) -> None:
    result = cross.bazel("test", "//stacks:all", "--platforms=@rules_venvstacks//platforms:macosx_arm64")
    output = result.stdout + result.stderr
    assert "3 tests pass" not in output
    assert "were skipped" in output


def test_every_platforms_layers_are_bit_identical_when_built_again(cross: Workspace) -> None:
    """A clean rebuild, seconds later, publishes the same bytes for every platform (Windows console-script
    launchers carry a zip that installer dates with the time it is written: the layers' are dated 1980)."""
    archives = sorted((cross.path / "bazel-bin/stacks/all_platforms").glob("*/*.tar.zst"))
    assert len(archives) == len(PLATFORMS) * len(ENV_NAMES)
    before = {path.name: sha256_of(path) for path in archives}
    cross.bazel("clean")
    cross.bazel("build", "//stacks:all_platforms")
    assert {path.name: sha256_of(path) for path in archives} == before
