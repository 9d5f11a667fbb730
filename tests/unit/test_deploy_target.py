"""Deploy targets (python/stacktool/deploy_target.py): install, update, rollback, list, gc of published stack
versions, on real published archives (the three-layer stack of conftest.py, published with stacktool.publish)."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from stacktool.cli import main
from stacktool.contract import Module
from stacktool.deploy import DeployError
from stacktool.deploy_source import open_source
from stacktool.deploy_target import LAYERS, Target, describe, gc, install, rollback, slot_names
from stacktool.publish import publish
from test_publish import PLATFORM, make_bundle


def run_app(target: Path) -> str:
    """What the stack's app prints when started from the target's current version."""
    app = target / "current" / "app-hello" / "bin" / "python"
    result = subprocess.run([str(app), "-m", "hello_app"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def publish_stack(metadata: list[Path], root: Path, tag_outputs: bool = False) -> Path:
    out = root / "published"
    manifest = make_bundle(root / "bundle", {PLATFORM: metadata})
    publish(manifest, out, platforms=[], tag_outputs=tag_outputs, dry_run=False)
    return out


def app_v2_stack(kit, published_runtime, published_stack, work: Path) -> list[Path]:
    """The stack with another build of app-hello (its launch module prints a version): new bytes, same target."""
    _, runtime = published_runtime
    launch = work / "src" / "hello_app.py"
    launch.parent.mkdir(parents=True)
    launch.write_text("import six, sys\nprint('hello, version 2 from', sys.prefix)\n", encoding="utf-8")
    config = kit.compose_config(
        "app-hello", "application", runtime=runtime, lower=["framework-sci", kit.runtime_env],
        modules=[Module("hello_app.py", str(launch))], launch_module="hello_app",
    )  # fmt: skip
    (work / "out").mkdir()
    metadata, _ = kit.build_and_pack(config, work / "build", work / "out")
    return [*published_stack[:2], metadata]


@pytest.fixture(scope="module")
def app_v2(kit, published_runtime, published_stack, tmp_path_factory) -> list[Path]:
    return app_v2_stack(kit, published_runtime, published_stack, tmp_path_factory.mktemp("app-v2"))


@pytest.fixture(scope="module")
def v1(published_stack, tmp_path_factory) -> Path:
    return publish_stack(published_stack, tmp_path_factory.mktemp("v1"))


@pytest.fixture(scope="module")
def v2(app_v2, tmp_path_factory) -> Path:
    return publish_stack(app_v2, tmp_path_factory.mktemp("v2"))


def layer_dirs(target: Path) -> set[str]:
    return {p.name for p in (target / LAYERS).iterdir()}


def test_install_update_rollback_gc(v1, v2, tmp_path, capsys):
    target = tmp_path / "target ü"
    assert main(["deploy", "install", str(v1), "--target", str(target)]) == 0
    printed = capsys.readouterr().out
    assert "unpacked cpython3_11, framework-sci, app-hello" in printed and "version 1 is active" in printed
    assert run_app(target).startswith("hello from")
    first_layers = layer_dirs(target)

    report = install(Target(target), open_source(str(v2), None), update=True)
    assert (report.version, report.previous, report.unpacked) == (2, 1, ["app-hello"])
    assert report.reused == ["cpython3_11", "framework-sci"]
    assert report.unpacked_bytes < report.stack_bytes / 10
    assert run_app(target).startswith("hello, version 2")
    assert len(layer_dirs(target) - first_layers) == 1  # one new slot: the app's

    before = {p: p.stat().st_mtime_ns for p in (target / LAYERS).iterdir()}
    assert rollback(Target(target), None) == (2, 1)
    assert run_app(target).startswith("hello from")
    assert {p: p.stat().st_mtime_ns for p in (target / LAYERS).iterdir()} == before  # nothing unpacked or touched
    assert [(v["version"], v["current"]) for v in describe(Target(target))] == [(1, True), (2, False)]

    # installing version 2 again activates the version that holds it; nothing is unpacked
    again = install(Target(target), open_source(str(v2), None), update=True)
    assert (again.version, again.unpacked, again.new_version) == (2, [], False)
    assert main(["deploy", "rollback", "--target", str(target)]) == 0
    assert main(["deploy", "list", "--target", str(target)]) == 0
    listing = capsys.readouterr().out
    assert "*   1" in listing and "    2" in listing

    removed, dropped = gc(Target(target), keep=1)
    assert removed == [2] and len(dropped) == 1 and dropped[0].startswith("app-hello-")
    assert layer_dirs(target) == first_layers  # exactly what version 1 needs
    assert run_app(target).startswith("hello from")
    with pytest.raises(DeployError, match="version 1 was the first one installed; nothing to roll back to"):
        rollback(Target(target), None)
    with pytest.raises(DeployError, match=r"version 2 is not there \(removed by gc\?\); kept versions: 1"):
        rollback(Target(target), 2)
    # version numbers are not given again after gc
    assert install(Target(target), open_source(str(v2), None), update=True).version == 3


def test_layers_find_their_lower_layers_through_their_own_slot(v1, tmp_path):
    target = tmp_path / "target"
    install(Target(target), open_source(str(v1), None), update=False)
    layers = [json.loads(p.read_text()) for p in (v1 / "__venvstacks__" / "env_metadata").glob("*.json")]
    order = sorted(layers, key=lambda m: ["runtime", "framework", "application"].index(m["kind"]))
    slots = slot_names(order)
    app_slot = target / LAYERS / slots["app-hello"]
    assert sorted(p.name for p in app_slot.iterdir()) == [".complete", "app-hello", "cpython3_11", "framework-sci"]
    assert (app_slot / "framework-sci").resolve() == (target / LAYERS / slots["framework-sci"] / "framework-sci")
    cfg = (app_slot / "app-hello" / "pyvenv.cfg").read_text()
    assert f"home = {app_slot / 'cpython3_11' / 'bin'}" in cfg
    assert (target / "current").resolve() == target / "versions" / "1"


def test_install_from_a_url_downloads_only_missing_layers(v1, v2, tmp_path):
    served: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            served.append(self.path)

    root = tmp_path / "site"
    root.mkdir()
    shutil.copytree(v1, root / "v1")
    shutil.copytree(v2, root / "v2")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        target = tmp_path / "target"
        install(Target(target), open_source(f"{url}/v1", None), update=False)
        served.clear()
        report = install(Target(target), open_source(f"{url}/v2/", None), update=True)
    finally:
        server.shutdown()
    assert report.unpacked == ["app-hello"]
    archives = sorted(path for path in served if ".tar." in path)
    assert archives == ["/v2/app-hello.tar.zst"]
    assert run_app(target).startswith("hello, version 2")
    assert not (target / ".downloads").exists()


def test_a_tampered_archive_leaves_the_target_as_it_was(v1, v2, tmp_path):
    target = tmp_path / "target"
    install(Target(target), open_source(str(v1), None), update=False)
    before = layer_dirs(target)
    bad = shutil.copytree(v2, tmp_path / "bad")
    archive = bad / "app-hello.tar.zst"
    archive.write_bytes(archive.read_bytes()[:-1] + b"\0")
    with pytest.raises(DeployError, match=r"/bad/app-hello\.tar\.zst has sha256 [0-9a-f]+, but .*\.json says"):
        install(Target(target), open_source(str(bad), None), update=True)
    assert layer_dirs(target) == before and sorted(p.name for p in (target / "versions").glob("[0-9]*")) == ["1"]
    assert run_app(target).startswith("hello from")


def test_tagged_outputs_need_the_platform_when_several_are_published(published_stack, tmp_path):
    out = publish_stack(published_stack, tmp_path, tag_outputs=True)
    stack = open_source(str(out), None)  # the only summary there
    assert stack.summary_name == f"__venvstacks__/venvstacks-{PLATFORM}.json"
    shutil.copy(out / stack.summary_name, out / "__venvstacks__/venvstacks-linux_aarch64.json")
    with pytest.raises(DeployError, match=r"several platforms \(linux_aarch64, linux_x86_64\): pass --platform"):
        open_source(str(out), None)
    assert open_source(str(out), PLATFORM).layers[-1]["archive_name"] == f"app-hello-{PLATFORM}-1.tar.zst"
    with pytest.raises(DeployError, match=r"layers for linux_x86_64 where linux_aarch64 was asked for"):
        open_source(str(out), "linux_aarch64")


def test_clear_errors(v1, tmp_path):
    with pytest.raises(DeployError, match=r"no published stack there: __venvstacks__/venvstacks\.json is missing"):
        open_source(str(tmp_path), None)
    with pytest.raises(DeployError, match="no such directory"):
        open_source(str(tmp_path / "nothing"), None)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(DeployError, match="not a deploy target \\(it holds other files\\)"):
        install(Target(other), open_source(str(v1), None), update=False)
    with pytest.raises(DeployError, match="no deploy target there; make one: `deploy install SOURCE --target DIR`"):
        install(Target(tmp_path / "new"), open_source(str(v1), None), update=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DeployError, match="no active version to update; use `deploy install` for the first one"):
        install(Target(tmp_path / "empty"), open_source(str(v1), None), update=True)
    with pytest.raises(DeployError, match="no deploy target there"):
        gc(Target(tmp_path / "new"), keep=1)
    exported = tmp_path / "exported"
    shutil.copytree(v1 / "__venvstacks__", exported / "__venvstacks__")
    summary = exported / "__venvstacks__" / "venvstacks.json"
    data = json.loads(summary.read_text())
    for group in data["layers"].values():
        for metadata in group:
            for field in ("archive_name", "archive_hashes", "archive_size", "archive_build"):
                metadata.pop(field)
    summary.write_text(json.dumps(data))
    with pytest.raises(DeployError, match="has no archive \\(a local export\\?\\)"):
        open_source(str(exported), None)
