"""Tests for stacktool.cli: the verbs as Bazel actions and users run them, errors as one line without traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from stacktool.cli import main

ENTRY = Path(__file__).resolve().parents[2] / "python" / "run_stacktool.py"


def test_fail_verb(capsys):
    assert main(["fail", "--message", "the lock of //x:y is stale"]) == 1
    assert capsys.readouterr().err == "error: the lock of //x:y is stale\n"


def test_install_wheel_verb(wheels, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    args = ["--wheel", str(wheels["wheel-0.45.1"]), "--out", str(out), "--python", "3.11", "--platform", "win_arm64"]
    assert main(["install-wheel", *args]) == 0
    data = (out / "Scripts" / "wheel.exe").read_bytes()
    pe = int.from_bytes(data[0x3C:0x40], "little")
    assert int.from_bytes(data[pe + 4 : pe + 6], "little") == 0xAA64  # an ARM64 launcher for win_arm64
    assert (out / "Lib" / "site-packages" / "wheel" / "__init__.py").is_file()


def test_user_error_is_one_line_without_traceback(wheels, tmp_path, capsys):
    args = ["--wheel", str(wheels["six-1.16.0"]), "--out", str(tmp_path), "--python", "3.11", "--platform", "amiga"]
    assert main(["install-wheel", *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: unknown platform 'amiga'; supported: ")
    assert "Traceback" not in err


def test_compose_and_pack_verbs(kit, wheels, posix_trees, tmp_path, capsys):
    six = kit.wheel_entry(wheels["six-1.16.0"], posix_trees["six-1.16.0"])
    cfg = kit.compose_config("framework-sci", "framework", wheels=[six])
    config = tmp_path / "compose.json"
    config.write_text(json.dumps(cfg), encoding="utf-8")
    tree = tmp_path / "tree"
    tree.mkdir()
    assert main(["compose", "--config", str(config), "--out", str(tree)]) == 0
    assert (tree / "lib/python3.11/site-packages/six.py").is_file()

    pylock = tmp_path / "pylock.framework-sci.toml"
    pylock.write_text('lock-version = "1.0"\n', encoding="utf-8")
    runtime_info = tmp_path / "runtime.json"
    runtime_info.write_text(
        json.dumps({"file": "rt.tar.gz", "origin": "local", "python_version": "3.11.7", "sha256": "a" * 64}),
        encoding="utf-8",
    )
    pack_config = tmp_path / "pack.json"
    pack_config.write_text(json.dumps(kit.pack_config(cfg, pylock, runtime_info)), encoding="utf-8")
    archive, metadata = tmp_path / "framework-sci.tar.zst", tmp_path / "framework-sci.json"
    args = ["--tree", str(tree), "--archive", str(archive), "--metadata", str(metadata), "--pylock", str(pylock)]
    assert main(["pack", *args, "--config", str(pack_config)]) == 0
    assert json.loads(metadata.read_text(encoding="utf-8"))["archive"]["name"] == archive.name

    pylock.write_text('lock-version = "1.0"\n# edited\n', encoding="utf-8")
    assert main(["pack", *args, "--config", str(pack_config)]) == 1
    assert capsys.readouterr().err.startswith("error: pylock.framework-sci.toml changed after //stacks:lock")

    cfg["wheels"].append(kit.wheel_entry(wheels["six-1.17.0"], posix_trees["six-1.17.0"]))
    config.write_text(json.dumps(cfg), encoding="utf-8")
    again = tmp_path / "again"
    again.mkdir()
    assert main(["compose", "--config", str(config), "--out", str(again)]) == 1
    assert "both install lib/python3.11/site-packages/six.py" in capsys.readouterr().err


def lock_spec(tmp_path: Path, requirements: list[str]) -> Path:
    layer = {
        "key": "stacks:cpython3_11", "kind": "runtime", "env_name": "cpython3_11", "python": "3.11",
        "requirements": requirements, "lower": [], "platforms": ["linux_x86_64"], "pylock": "pylock.cpython3_11.toml",
        "linux_target": "glibc@2.28", "macosx_target": "14.0",
    }  # fmt: skip
    spec = tmp_path / "lock.spec.json"
    spec.write_text(json.dumps({"lock": "stacks:lock", "layers": [layer]}), encoding="utf-8")
    return spec


def test_lock_verb_with_uv_arguments_and_previous_index(uv, tmp_path, capsys):
    out = tmp_path / "stacks"
    out.mkdir()
    common = ["--out-dir", str(out), "--index-name", "venvstacks_lock.json", "--uv", str(uv)]
    spec = lock_spec(tmp_path, ["packaging<25"])
    # as `bazel run //stacks:lock -- --exclude-newer ...` passes it (the script always puts `--` first)
    assert main(["lock", "--spec", str(spec), *common, "--", "--exclude-newer", "2024-06-01T00:00:00Z"]) == 0
    assert capsys.readouterr().out == f"locked 1 layers into {out}\n"
    lock = tomllib.loads((out / "pylock.cpython3_11.toml").read_text(encoding="utf-8"))
    assert [(p["name"], p["version"]) for p in lock["packages"]] == [("packaging", "24.0")]
    index = json.loads((out / "venvstacks_lock.json").read_text(encoding="utf-8"))
    assert index["layers"]["stacks:cpython3_11"]["inputs"]["requirements"] == ["packaging<25"]
    # relocking without the cut-off keeps the version locked before
    assert main(["lock", "--spec", str(spec), *common, "--"]) == 0
    lock = tomllib.loads((out / "pylock.cpython3_11.toml").read_text(encoding="utf-8"))
    assert [(p["name"], p["version"]) for p in lock["packages"]] == [("packaging", "24.0")]


def test_lock_verb_user_errors(uv, tmp_path, capsys):
    out = tmp_path / "stacks"
    out.mkdir()
    common = ["--out-dir", str(out), "--index-name", "venvstacks_lock.json", "--uv", str(uv), "--"]
    assert main(["lock", "--spec", str(lock_spec(tmp_path, ["six=="])), *common]) == 1
    assert capsys.readouterr().err.startswith("error: //stacks:cpython3_11: requirement 'six=='")
    assert main(["lock", "--spec", str(lock_spec(tmp_path, ["sgmllib3k==1.0.0"])), *common]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: //stacks:cpython3_11 (linux_x86_64): uv could not resolve")
    assert "sgmllib3k" in err
    assert list(out.iterdir()) == []


def test_deploy_and_run_verbs(published_stack, tmp_path):
    """`deploy` prints each layer; `run` (what `bazel run` of a layer execs) deploys and runs the launch module."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    dest = tmp_path / "run dir"
    metadata = [arg for path in published_stack for arg in ("--metadata", str(path))]
    result = subprocess.run(
        [sys.executable, str(ENTRY), "run", "--deploy-dir", str(dest), *metadata, "--", "x", "--y"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"hello from {dest / 'app-hello'}"
    assert result.stdout.splitlines()[-1] == "args ['x', '--y']"
    to = tmp_path / "deployed"
    result = subprocess.run(
        [sys.executable, str(ENTRY), "deploy", "--to", str(to), *map(str, published_stack[:2])],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"deployed cpython3_11 -> {to / 'cpython3_11'}",
        f"deployed framework-sci -> {to / 'framework-sci'}",
    ]


@pytest.mark.parametrize("argv", [[], ["no-such-verb"], ["compose", "--config", "x.json"]])
def test_bad_command_lines_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "usage: stacktool" in capsys.readouterr().err
