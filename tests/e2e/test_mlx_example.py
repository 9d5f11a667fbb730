"""The MLX example end to end: lock, build, run, test, caching and reproducibility, with a real Bazel and PyPI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
import zstandard
from harness import (
    EXAMPLES,
    MLX_LAYERS,
    ROOT,
    Workspace,
    assert_same_published_layers,
    copy_workspace,
    open_archive,
    published,
    read_json_stream,
)
from stacktool.digest import sha256_of

SCHEMA = json.loads((ROOT / "python/stacktool/schemas/layer-metadata.schema.json").read_text())


@pytest.fixture(scope="module")
def mlx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    base = tmp_path_factory.mktemp("mlx")
    ws = copy_workspace(EXAMPLES / "mlx", base / "mlx", base / "output_base")
    ws.bazel("build", "//stacks:mlx_app")
    yield ws
    ws.discard()


def members(archive: Path) -> dict[str, tarfile.TarInfo]:
    with open_archive(archive) as tar:
        return {member.name: member for member in tar}


def test_build_publishes_every_layer_with_valid_metadata(mlx: Workspace) -> None:
    for layer, env_name in MLX_LAYERS.items():
        metadata = json.loads(published(mlx, layer, ".json").read_text())
        jsonschema.validate(metadata, SCHEMA)
        archive = published(mlx, layer, ".tar.zst")
        assert metadata["layer_name"] == env_name
        assert (metadata["archive_name"], metadata["archive_size"]) == (archive.name, archive.stat().st_size)
        assert metadata["archive_hashes"] == {"sha256": sha256_of(archive)}
        assert metadata["lock"]["sha256"] == sha256_of(mlx.path / "stacks" / metadata["lock"]["file"])
        # What is published, and the actions' configs: no layer tree (the `trees` output group's), no scratch tree
        outputs = {f"{env_name}-linux_x86_64.{suffix}" for suffix in ("tar.zst", "json", "cdx.json")}
        outputs |= {"compose.json", "pack.json"}
        if layer == "cpython3_11":
            outputs |= {"runtime_record.json", "venv_files"}
        assert {p.name for p in published(mlx, layer, ".json").parent.iterdir()} == outputs
    framework = json.loads(published(mlx, "mlx", ".json").read_text())
    assert {p["name"]: p["version"] for p in framework["packages"]} == {"mlx": "0.32.4", "mlx-cpu": "0.32.4"}
    assert (framework["required_layers"], framework["runtime_layer"]) == ([], "cpython3_11")
    app = json.loads(published(mlx, "mlx_app", ".json").read_text())
    assert app["packages"] == []  # mlx comes from the framework layer, not installed again
    assert (app["required_layers"], app["runtime_layer"]) == (["framework-mlx"], "cpython3_11")
    assert app["app_launch_module"] == "report_mlx_version"


def test_archives_hold_their_layer_only(mlx: Workspace) -> None:
    framework = members(published(mlx, "mlx", ".tar.zst"))
    site = "framework-mlx/lib/python3.11/site-packages"
    assert f"{site}/mlx/core.cpython-311-x86_64-linux-gnu.so" in framework
    assert any(name.startswith(f"{site}/mlx_cpu.libs/liblapack") for name in framework)
    assert all(name.split("/")[0] == "framework-mlx" for name in framework)
    app = members(published(mlx, "mlx_app", ".tar.zst"))
    assert "app-mlx_app/lib/python3.11/site-packages/report_mlx_version.py" in app
    assert not any("/mlx/" in name for name in app)
    runtime = members(published(mlx, "cpython3_11", ".tar.zst"))
    assert runtime["cpython3_11/bin/python3.11"].mode == 0o755
    for archive in (framework, app, runtime):
        for member in archive.values():
            assert member.uid == member.gid == 0 and member.mtime == 315532800
            assert not member.islnk() and not (member.issym() and member.linkname.startswith("/"))


def test_noop_rebuild_executes_nothing(mlx: Workspace) -> None:
    assert mlx.build_counting("//stacks:mlx_app") == {}


def test_run_prints_mlx_version_and_computes_on_cpu(mlx: Workspace) -> None:
    result = mlx.bazel("run", "//stacks:mlx_app", "--", "--flag", "two words")
    assert "MLX 0.32.4 on Device(cpu, 0)" in result.stdout
    assert "a @ a.T = [[5.0, 11.0], [11.0, 25.0]]" in result.stdout
    assert "arguments: --flag two words" in result.stdout


def test_layer_tests_pass(mlx: Workspace) -> None:
    result = mlx.bazel("test", "//stacks:all")
    assert "4 tests pass" in result.stdout + result.stderr


def test_archives_deploy_with_their_postinstall_anywhere_and_move(mlx: Workspace, tmp_path: Path) -> None:
    """Unpack with plain tar + the postinstall script inside each archive; then move the tree and redo it."""
    deployed = tmp_path / "déployé avec espaces"
    deployed.mkdir()
    for layer in MLX_LAYERS:
        subprocess.run(
            ["tar", "--zstd", "-xf", str(published(mlx, layer, ".tar.zst")), "-C", str(deployed)], check=True
        )

    def postinstall_and_run(root: Path) -> str:
        python = root / "cpython3_11" / "bin" / "python3.11"
        for env_name in MLX_LAYERS.values():
            subprocess.run([str(python), str(root / env_name / "postinstall.py")], check=True)
        app = root / "app-mlx_app" / "bin" / "python"
        env = {"PATH": "/usr/bin:/bin"}  # nothing of the build's environment
        return subprocess.run(
            [str(app), "-m", "report_mlx_version"], env=env, capture_output=True, text=True, check=True
        ).stdout

    assert "MLX 0.32.4" in postinstall_and_run(deployed)
    # A console script of the framework layer runs with the framework's python, found next to the script.
    launch = subprocess.run(
        [str(deployed / "framework-mlx" / "bin" / "mlx.launch"), "--help"], capture_output=True, text=True, check=True
    )
    assert "usage:" in launch.stdout and "mlx.launch" in launch.stdout
    moved = tmp_path / "moved" / "elsewhere ü"
    moved.parent.mkdir()
    shutil.move(deployed, moved)
    assert "MLX 0.32.4" in postinstall_and_run(moved)
    assert f"home = {moved}/cpython3_11/bin" in (moved / "app-mlx_app" / "pyvenv.cfg").read_text()


def test_app_only_change_rebuilds_no_runtime_or_framework_action(mlx: Workspace) -> None:
    stacks = mlx.path / "stacks"
    before = {p.name: p.read_bytes() for p in stacks.glob("pylock.*.toml")}
    build = stacks / "BUILD.bazel"
    original = build.read_text()
    build.write_text(original.replace('requirements = ["mlx"],', 'requirements = ["mlx", "six==1.16.0"],'))
    try:
        mlx.bazel("run", "//stacks:lock")
        after = {p.name: p.read_bytes() for p in stacks.glob("pylock.*.toml")}
        assert after["pylock.cpython3_11.toml"] == before["pylock.cpython3_11.toml"]
        assert after["pylock.framework-mlx.toml"] == before["pylock.framework-mlx.toml"]
        assert b'name = "six"' in after["pylock.app-mlx_app.toml"]
        log = mlx.output_base / "app_change.json"
        mlx.bazel("build", "//stacks:mlx_app", f"--execution_log_json_file={log}")
        executed = [e for e in read_json_stream(log) if not e.get("cacheHit")]
        outputs = [o["path"] for e in executed for o in e.get("actualOutputs", e.get("listedOutputs", []))]
        assert sorted(e["mnemonic"] for e in executed) == ["VenvstacksInstallWheel", "VenvstacksPack"]
        assert all("mlx_app.layer" in path or "six" in path for path in map(str, outputs)), outputs
    finally:
        build.write_text(original)
        mlx.bazel("run", "//stacks:lock")


def test_relock_without_changes_rewrites_nothing(mlx: Workspace) -> None:
    stacks = mlx.path / "stacks"
    files = [*sorted(stacks.glob("pylock.*.toml")), stacks / "venvstacks_lock.json"]
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in files}
    mlx.bazel("run", "//stacks:lock")
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in files} == before


def test_only_locking_needs_uv(mlx: Workspace) -> None:
    """uv is a toolchain of its own: a layer's build neither fetches it nor has it among its actions' inputs (a new
    uv does not invalidate built layers); the lock's run script has it."""

    def uv_labels(target: str) -> list[str]:
        labels = mlx.bazel("cquery", f"deps({target})", "--output=label").stdout.splitlines()
        return [label for label in labels if "tool_whl_uv_" in label]

    assert uv_labels("//stacks:mlx_app") == []
    assert uv_labels("//stacks:lock")


def test_clean_builds_in_two_checkouts_are_bit_identical(mlx: Workspace, tmp_path: Path) -> None:
    mlx.bazel("build", "//stacks:mlx_app")  # up to date after the tests that changed the stack
    other = copy_workspace(EXAMPLES / "mlx", tmp_path / "another" / "checkout", tmp_path / "other_output_base")
    for lock_file in [*(mlx.path / "stacks").glob("pylock.*.toml"), mlx.path / "stacks" / "venvstacks_lock.json"]:
        shutil.copyfile(lock_file, other.path / "stacks" / lock_file.name)  # the same sources: relocked ones too
    try:
        other.bazel("build", "//stacks:mlx_app")
        assert_same_published_layers(mlx, other)
    finally:
        other.discard()


def test_the_tool_interpreter_is_built_by_an_action_and_imports_compiled_code(mlx: Workspace) -> None:
    """The tool's interpreter is written by an action on the exec platform (its tar unpacks the runtime archive, whose
    interpreter copies what runs the tool and zips its standard library, with bytecode for what the tool imports), so
    a remote cache can serve it; its pure-Python dependencies are one zip with bytecode, beside it on every action's
    sys.path. Every other action runs the copied interpreter."""
    log = mlx.output_base / "compiled.json"
    mlx.bazel("clean")
    # Unsandboxed, so that what the action unpacks would stay in the exec root if it were not deleted.
    mlx.bazel(
        "build", "//stacks:mlx_app", "--strategy=VenvstacksToolEnvironment=local", f"--execution_log_json_file={log}"
    )
    entries = read_json_stream(log)
    (environment,) = [e for e in entries if e["mnemonic"] == "VenvstacksToolEnvironment"]
    assert environment["commandArgs"][:2] == ["/bin/sh", "-c"]
    archive = "external/rules_venvstacks~~venvstacks~cpython_3_11_linux_x86_64/runtime.tar.gz"  # a runtime layer's
    assert f"'/bin/tar' '-xzf' '{archive}'" in environment["commandArgs"][2]
    assert archive in {i["path"] for i in environment["inputs"]}
    outputs = [o["path"] for o in environment["actualOutputs"]]
    interpreter = next(path for path in outputs if path.endswith("/python/bin/python3.11"))
    runtime = interpreter.removesuffix("/bin/python3.11")
    (zipped,) = [path for path in outputs if path.endswith("/dependencies.zip")]
    files = {path.removeprefix(runtime + "/") for path in outputs if path.startswith(runtime + "/")}
    assert {"bin/python3.11", "lib/python3.11/os.py", "lib/python311.zip"} <= files
    assert [f for f in files if f.endswith(".py")] == ["lib/python3.11/os.py"]  # the rest is in the zip
    assert 20 < len(files) < 150, len(files)  # the interpreter, libpython, the extension modules: no sources
    assert not (mlx.path / runtime).parent.joinpath("unpacked").exists()  # what tar unpacked is gone
    with zipfile.ZipFile(mlx.path / runtime / "lib" / "python311.zip") as stdlib:
        names = set(stdlib.namelist())
    listed = {line for line in (ROOT / "rules/private/tool_stdlib_bytecode.txt").read_text().split() if line[0] != "#"}
    sources = {name for name in names if name.endswith(".py")}
    compiled = {name[:-1] for name in names if name.endswith(".pyc")}
    assert compiled == listed & sources
    assert 100 < len(compiled) < len(sources) / 3, (len(compiled), len(sources))
    with zipfile.ZipFile(mlx.path / zipped) as dependencies:
        assert {"jsonschema/__init__.pyc", "installer/__init__.pyc", "packaging/version.pyc"} <= set(
            dependencies.namelist()
        )
    for entry in entries:
        if entry is not environment:
            assert entry["commandArgs"][0] == interpreter, entry["commandArgs"][:2]
            assert ["--path", zipped] == entry["commandArgs"][6:8], entry["commandArgs"][:8]


def test_no_absolute_build_paths_in_published_files(mlx: Workspace) -> None:
    build_paths = [str(mlx.path).encode(), str(mlx.output_base).encode()]
    for layer in MLX_LAYERS:
        # The home directory too, except in the runtime: the local test runtime is made from a CPython built
        # under /root/.pyenv, whose prefix its binaries still name (a real python-build-standalone names /install).
        needles = build_paths + ([] if layer == "cpython3_11" else [os.fsencode(Path.home())])
        data = published(mlx, layer, ".json").read_bytes()
        with published(mlx, layer, ".tar.zst").open("rb") as raw:
            data += zstandard.ZstdDecompressor().stream_reader(raw).read()
        for needle in needles:
            assert needle not in data, (layer, needle)
