"""Publishing and exporting a stack with Bazel: `bazel run //stacks:release.publish` and `.export` of
examples/sklearn's stack_bundle (two apps over one framework), with real wheels and a real Bazel."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard
from harness import EXAMPLES, Workspace, copy_workspace
from stacktool.digest import sha256_of
from stacktool.metadata import read_metadata

PLATFORM = "linux_x86_64"
TARGETS = ("cpython3_11", "framework-sklearn", "app-classify", "app-cluster")


@pytest.fixture(scope="module")
def sklearn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    base = tmp_path_factory.mktemp("publish")
    ws = copy_workspace(EXAMPLES / "sklearn", base / "sklearn", base / "output_base")
    try:
        yield ws
    finally:
        ws.discard()


def tar_stream_sha256(archive: Path) -> str:
    with archive.open("rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as tar:
        return hashlib.file_digest(tar, "sha256").hexdigest()  # type: ignore[arg-type]


def test_release_bundle_holds_the_layers_tar_streams_recompressed(sklearn: Workspace) -> None:
    """examples/sklearn's bundle has compression = "release": each archive is its layer's own tar stream in zstd
    with a 128 MiB window, smaller, and the bundle's metadata and SBOM give its size and sha256. The layers' own
    archives are what the bundle publishes with compression = "fast"."""
    build_file = sklearn.path / "stacks" / "BUILD.bazel"
    text = build_file.read_text()
    bundle = sklearn.path / "bazel-bin" / "stacks" / "release" / PLATFORM
    build_file.write_text(text.replace('compression = "release"', 'compression = "fast"'))
    try:
        sklearn.bazel("build", "//stacks:release")
        archives = {t: bundle / f"{t}-{PLATFORM}.tar.zst" for t in TARGETS}
        packed = {t: (tar_stream_sha256(a), a.stat().st_size) for t, a in archives.items()}
    finally:
        build_file.write_text(text)
    executed = sklearn.build_counting("//stacks:release")
    assert executed == {"VenvstacksRecompress": len(TARGETS)}  # nothing else is built again

    for target in TARGETS:
        released = bundle / f"{target}-{PLATFORM}.tar.zst"
        assert tar_stream_sha256(released) == packed[target][0], target
        assert zstandard.get_frame_parameters(released.read_bytes()[:18]).window_size == 1 << 27, target
        assert released.stat().st_size < packed[target][1], target
        metadata = read_metadata(released.with_name(f"{target}-{PLATFORM}.json"))
        assert metadata["archive_hashes"]["sha256"] == sha256_of(released)
        assert metadata["archive_size"] == released.stat().st_size
        sbom = json.loads(released.with_name(f"{target}-{PLATFORM}.cdx.json").read_text())
        assert sbom["metadata"]["component"]["hashes"][0]["content"] == sha256_of(released)


def builds(summary: dict) -> dict[str, int]:
    return {m["install_target"]: m["archive_build"] for group in summary["layers"].values() for m in group}


def test_publish_then_republish_after_an_app_only_change(sklearn: Workspace, tmp_path: Path) -> None:
    out = tmp_path / "artifacts ü"
    dry = sklearn.bazel("run", "//stacks:release.publish", "--", str(out), "--tag-outputs", "--dry-run")
    assert not out.exists()
    assert sorted(builds(json.loads(dry.stdout)[PLATFORM])) == sorted(TARGETS)
    sklearn.bazel("run", "//stacks:release.publish", "--", str(out), "--tag-outputs")
    summary = json.loads((out / f"__venvstacks__/venvstacks-{PLATFORM}.json").read_text())
    assert builds(summary) == dict.fromkeys(TARGETS, 1)
    # venvstacks' field names: the apps name their framework and runtime; each archive is what the metadata says
    apps = {m["layer_name"]: m for m in summary["layers"]["applications"]}
    assert {name: (m["required_layers"], m["runtime_layer"]) for name, m in apps.items()} == {
        "app-classify": (["framework-sklearn"], "cpython3_11"),
        "app-cluster": (["framework-sklearn"], "cpython3_11"),
    }
    for group in summary["layers"].values():
        for metadata in group:
            archive = out / metadata["archive_name"]
            assert archive.name == f"{metadata['install_target']}-{PLATFORM}-1.tar.zst"
            assert metadata["archive_hashes"]["sha256"] == sha256_of(archive)
            assert (
                read_metadata(out / f"__venvstacks__/env_metadata/{metadata['layer_name']}-{PLATFORM}.json") == metadata
            )
            assert (out / archive.name.replace(".tar.zst", ".cdx.json")).is_file()

    launch = sklearn.path / "stacks" / "classify_iris.py"
    launch.write_text(launch.read_text() + "\n# an app-only change\n")
    sklearn.bazel("run", "//stacks:release.publish", "--", str(out), "--tag-outputs")
    summary = json.loads((out / f"__venvstacks__/venvstacks-{PLATFORM}.json").read_text())
    assert builds(summary) == {**dict.fromkeys(TARGETS, 1), "app-classify": 2}
    assert (out / f"app-classify-{PLATFORM}-1.tar.zst").is_file() and (
        out / f"app-classify-{PLATFORM}-2.tar.zst"
    ).is_file()

    untagged = sklearn.bazel("run", "//stacks:release.publish", "--", str(out / "plain"))
    assert "published app-cluster.tar.zst" in untagged.stdout
    launch.write_text(launch.read_text() + "# another change\n")
    refused = sklearn.bazel("run", "//stacks:release.publish", "--", str(out / "plain"), check=False)
    assert refused.returncode != 0
    assert "app-classify.tar.zst exists with other bytes" in refused.stderr


def test_export_deploys_both_apps_ready_to_run(sklearn: Workspace, tmp_path: Path) -> None:
    out = tmp_path / "export"
    sklearn.bazel("run", "//stacks:release.export", "--", str(out))
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted([*TARGETS, "__venvstacks__"])
    for app, expected in (("app-classify", "test accuracy"), ("app-cluster", "3 clusters, sizes")):
        module = json.loads((out / f"__venvstacks__/env_metadata/{app}.json").read_text())
        run = subprocess.run(
            [str(out / app / "bin/python"), "-m", module["app_launch_module"]], capture_output=True, text=True
        )
        assert run.returncode == 0, run.stderr
        assert expected in run.stdout
    summary = json.loads((out / "__venvstacks__/venvstacks.json").read_text())
    assert sorted(m["install_target"] for group in summary["layers"].values() for m in group) == sorted(TARGETS)
