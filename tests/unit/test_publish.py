"""publish and export of a stack_bundle (python/stacktool/publish.py), on a real published three-layer stack."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from stacktool.cli import main
from stacktool.contract import Module
from stacktool.digest import sha256_of
from stacktool.metadata import read_metadata
from stacktool.publish import PublishError, export, publish
from stacktool.sbom import sbom_path

PLATFORM = "linux_x86_64"


def make_bundle(root: Path, stacks: dict[str, list[Path]]) -> Path:
    """A stack_bundle's output as Bazel writes it: platform -> metadata files (lowest first), with their archives
    and SBOMs beside them, linked into `<root>/<platform>/`, and the manifest."""
    platforms = {}
    for platform, files in stacks.items():
        (root / platform).mkdir(parents=True)
        for metadata in files:
            archive = metadata.parent / read_metadata(metadata)["archive_name"]
            for path in (metadata, archive, sbom_path(metadata)):
                (root / platform / path.name).symlink_to(path)
        platforms[platform] = {"deploy_order": [f.name for f in files]}
    manifest = root / "manifest.json"
    manifest.write_text(json.dumps({"platforms": platforms}), encoding="utf-8")
    return manifest


@pytest.fixture
def bundle(published_stack, tmp_path) -> Path:
    return make_bundle(tmp_path / "bundle", {PLATFORM: published_stack})


@pytest.fixture
def changed_app(kit, published_runtime, published_stack, tmp_path) -> list[Path]:
    """The same stack with another build of app-hello (its launch module changed): new bytes, same install target."""
    _, runtime = published_runtime
    launch = tmp_path / "v2" / "hello_app.py"
    launch.parent.mkdir()
    launch.write_text("print('hello, version 2')\n", encoding="utf-8")
    config = kit.compose_config(
        "app-hello", "application", runtime=runtime, lower=["framework-sci", kit.runtime_env],
        modules=[Module("hello_app.py", str(launch))], launch_module="hello_app",
    )  # fmt: skip
    out = tmp_path / "v2-published"
    out.mkdir()
    metadata, _ = kit.build_and_pack(config, tmp_path / "v2-work", out)
    return [*published_stack[:2], metadata]


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_publish_writes_archives_sboms_and_the_venvstacks_summary(bundle, published_stack, tmp_path):
    out = tmp_path / "artifacts"
    publish(bundle, out, platforms=[], tag_outputs=False, dry_run=False)
    assert sorted(tree(out)) == sorted([
        "__venvstacks__/venvstacks.json",
        *(f"__venvstacks__/env_metadata/{name}.json" for name in ("cpython3_11", "framework-sci", "app-hello")),
        *(f"{name}.{ext}" for name in ("cpython3_11", "framework-sci", "app-hello") for ext in ("tar.zst", "cdx.json")),
    ])  # fmt: skip
    summary = json.loads((out / "__venvstacks__/venvstacks.json").read_text())
    # read with the field names venvstacks documents for its stack summary and layer metadata
    runtimes, frameworks, apps = (summary["layers"][group] for group in ("runtimes", "frameworks", "applications"))
    assert [m["install_target"] for m in runtimes + frameworks + apps] == ["cpython3_11", "framework-sci", "app-hello"]
    (app,) = apps
    assert (app["layer_name"], app["runtime_layer"], app["required_layers"]) == (
        "app-hello",
        "cpython3_11",
        ["framework-sci"],
    )
    assert app["app_launch_module"] == "hello_app"
    for metadata in runtimes + frameworks + apps:
        archive = out / metadata["archive_name"]
        assert metadata["archive_build"] == 1
        assert metadata["archive_hashes"] == {"sha256": sha256_of(archive)}
        assert metadata["archive_size"] == archive.stat().st_size
        assert metadata["target_platform"] == PLATFORM
        env_metadata = out / f"__venvstacks__/env_metadata/{metadata['layer_name']}.json"
        assert read_metadata(env_metadata) == metadata  # valid against the schema, and what the summary says
    bundled = {read_metadata(f)["install_target"]: f for f in published_stack}
    assert (out / "app-hello.tar.zst").read_bytes() == (
        bundled["app-hello"].parent / "app-hello-linux_x86_64.tar.zst"
    ).read_bytes()
    assert (out / "app-hello.cdx.json").read_bytes() == sbom_path(bundled["app-hello"]).read_bytes()


def test_publishing_the_same_bytes_again_changes_nothing(bundle, tmp_path):
    out = tmp_path / "artifacts"
    publish(bundle, out, platforms=[], tag_outputs=True, dry_run=False)
    first = tree(out)
    publish(bundle, out, platforms=[], tag_outputs=True, dry_run=False)
    assert tree(out) == first


def test_tagged_outputs_count_builds_of_an_install_target(bundle, changed_app, tmp_path):
    out = tmp_path / "artifacts"
    publish(bundle, out, platforms=[], tag_outputs=True, dry_run=False)
    assert (out / "app-hello-linux_x86_64-1.tar.zst").is_file()
    assert (out / "__venvstacks__/venvstacks-linux_x86_64.json").is_file()
    assert (out / "__venvstacks__/env_metadata/app-hello-linux_x86_64.json").is_file()
    second = make_bundle(tmp_path / "bundle-2", {PLATFORM: changed_app})
    summary = publish(second, out, platforms=[], tag_outputs=True, dry_run=False)[PLATFORM]
    builds = {m["install_target"]: m["archive_build"] for group in summary["layers"].values() for m in group}
    assert builds == {"cpython3_11": 1, "framework-sci": 1, "app-hello": 2}
    assert (out / "app-hello-linux_x86_64-1.tar.zst").is_file()  # the first build stays published
    assert (
        sha256_of(out / "app-hello-linux_x86_64-2.tar.zst")
        == read_metadata(changed_app[-1])["archive_hashes"]["sha256"]
    )
    assert read_metadata(out / "__venvstacks__/env_metadata/app-hello-linux_x86_64.json")["archive_build"] == 2


def test_other_bytes_under_a_published_name_are_refused_before_anything_is_written(bundle, changed_app, tmp_path):
    out = tmp_path / "artifacts"
    publish(bundle, out, platforms=[], tag_outputs=False, dry_run=False)
    before = tree(out)
    second = make_bundle(tmp_path / "bundle-2", {PLATFORM: changed_app})
    with pytest.raises(PublishError, match=r"app-hello\.tar\.zst exists with other bytes.*--tag-outputs"):
        publish(second, out, platforms=[], tag_outputs=False, dry_run=False)
    assert tree(out) == before
    assert not list(out.rglob("*.partial"))


def test_dry_run_writes_nothing(bundle, tmp_path, capsys):
    out = tmp_path / "artifacts"
    assert main(["publish", "--manifest", str(bundle), "--dry-run", str(out)]) == 0
    assert not out.exists()
    printed = json.loads(capsys.readouterr().out)
    assert [m["archive_name"] for m in printed[PLATFORM]["layers"]["applications"]] == ["app-hello.tar.zst"]


def test_several_platforms_need_tagged_outputs(published_stack, tmp_path):
    manifest = make_bundle(tmp_path / "bundle", {PLATFORM: published_stack, "linux_aarch64": published_stack})
    with pytest.raises(PublishError, match="2 platforms into one directory needs --tag-outputs"):
        publish(manifest, tmp_path / "out", platforms=[], tag_outputs=False, dry_run=False)
    with pytest.raises(PublishError, match="the bundle has no win_amd64"):
        publish(manifest, tmp_path / "out", platforms=["win_amd64"], tag_outputs=True, dry_run=False)
    assert not (tmp_path / "out").exists()


def test_a_tampered_archive_is_refused(published_stack, tmp_path):
    copies = tmp_path / "copies"
    copies.mkdir()
    for metadata in published_stack:
        for path in (metadata, metadata.parent / read_metadata(metadata)["archive_name"], sbom_path(metadata)):
            shutil.copy(path, copies / path.name)
    archive = copies / "framework-sci-linux_x86_64.tar.zst"
    archive.write_bytes(archive.read_bytes() + b"\0")
    manifest = make_bundle(tmp_path / "bundle", {PLATFORM: [copies / f.name for f in published_stack]})
    with pytest.raises(PublishError, match=r"framework-sci-linux_x86_64\.tar\.zst: its sha256 is not"):
        publish(manifest, tmp_path / "out", platforms=[], tag_outputs=False, dry_run=False)
    assert not (tmp_path / "out").exists()


def test_export_deploys_the_stack_ready_to_run(bundle, tmp_path):
    out = tmp_path / "export ü"
    paths = export(bundle, out, PLATFORM)
    assert [p.name for p in paths] == ["cpython3_11", "framework-sci", "app-hello"]
    run = subprocess.run([str(out / "app-hello/bin/python"), "-m", "hello_app"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[0] == f"hello from {out / 'app-hello'}"
    summary = json.loads((out / "__venvstacks__/venvstacks.json").read_text())
    (app,) = summary["layers"]["applications"]
    assert app["install_target"] == "app-hello" and "archive_name" not in app  # venvstacks' local-export fields
    with pytest.raises(PublishError, match="no layers for this machine \\(win_amd64\\)"):
        export(bundle, tmp_path / "elsewhere", "win_amd64")
