"""Tests for stacktool.cli: the verbs as Bazel actions and users run them, errors as one line without traceback."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from runtime_fixtures import make_fixture_runtime
from stacktool.archive import extract_archive
from stacktool.cli import main
from stacktool.contract import LAYER_RECORD, LayerRecord, RuntimeRecord, read_json, to_json
from stacktool.deploy import run_directory
from stacktool.link import python_wrapper

ENTRY = Path(__file__).resolve().parents[2] / "python" / "run_stacktool.py"
POSIX_VENV_SYMLINKS = {"bin/python3": "python", "bin/python3.11": "python"}


def sha256_hex(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fail_verb(capsys, tmp_path):
    message = tmp_path / "problem.txt"
    message.write_text("the lock of //x:y is stale\n", encoding="utf-8")
    assert main(["fail", "--message-file", str(message)]) == 1
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


def write_config(path: Path, config: Any) -> Path:
    path.write_text(to_json(config), encoding="utf-8")
    return path


def pack_args(layer: Path, config: Path, out: Path, env_name: str, pylock: Path) -> list[str]:
    """The pack verb's arguments as rules/private/layer.bzl passes them, its outputs in `out`."""
    files = {"--archive": f"{env_name}.tar.zst", "--metadata": f"{env_name}.json", "--sbom": f"{env_name}.cdx.json"}
    args = ["--layer", str(layer), "--config", str(config), "--pylock", str(pylock)]
    return args + [str(arg) for flag, name in files.items() for arg in (flag, out / name)]


def test_pack_and_compose_verbs(kit, wheels, posix_trees, tmp_path, capsys):
    # the runtime layer's record action: the record and venv files for the layers above; then its pack action
    runtime_archive = make_fixture_runtime(tmp_path, "linux_x86_64")
    config = kit.compose_config("cpython3_11", "runtime", runtime_archive=runtime_archive)
    runtime_config = write_config(tmp_path / "cpython3_11.compose.json", config)
    out, venv_files, record = tmp_path / "out", tmp_path / "venv_files", tmp_path / "runtime_record.json"
    out.mkdir()
    venv_files.mkdir()
    pylock = tmp_path / "pylock.cpython3_11.toml"
    pylock.write_text('lock-version = "1.0"\n', encoding="utf-8")
    runtime_pack = write_config(tmp_path / "cpython3_11.pack.json", kit.pack_config(pylock, "cpython3_11"))
    flags = ["--config", str(runtime_config), "--out", str(record), "--venv-files", str(venv_files)]
    assert main(["runtime-record", *flags]) == 0
    assert main(["pack", *pack_args(runtime_config, runtime_pack, out, "cpython3_11", pylock)]) == 0
    runtime = read_json(RuntimeRecord, record)
    assert record.read_text(encoding="utf-8") == to_json(runtime)
    assert (runtime.interpreter, runtime.venv_symlinks) == ("bin/python3.11", POSIX_VENV_SYMLINKS)
    assert (runtime.source.file, runtime.source.sha256) == (runtime_archive.name, sha256_hex(runtime_archive))
    assert (venv_files / "bin" / "python").read_text(encoding="utf-8") == python_wrapper("LD_LIBRARY_PATH")
    (tmp_path / "runtime_extracted").mkdir()
    top = extract_archive(out / "cpython3_11.tar.zst", tmp_path / "runtime_extracted", top="cpython3_11")
    assert os.readlink(top / "bin" / "python") == "python3.11"
    # nothing but the declared outputs is left beside them: the scratch tree is gone
    assert sorted(p.name for p in out.iterdir()) == ["cpython3_11.cdx.json", "cpython3_11.json", "cpython3_11.tar.zst"]

    # the compose verb writes the same runtime layer as a tree (the `trees` output group), and nothing else
    runtime_tree = tmp_path / "cpython3_11"
    runtime_tree.mkdir()
    assert main(["compose", "--config", str(runtime_config), "--out", str(runtime_tree)]) == 0
    assert tree_members(runtime_tree) == tree_members(top)

    # a framework layer over it: from the runtime's record and venv files, not from its archive
    six = kit.wheel(wheels["six-1.16.0"], posix_trees["six-1.16.0"])
    cfg = kit.compose_config("framework-sci", "framework", wheels=[six])
    cfg = dataclasses.replace(cfg, runtime_record=str(record), venv_files=str(venv_files))
    config = write_config(tmp_path / "compose.json", cfg)
    pylock = tmp_path / "pylock.framework-sci.toml"
    pylock.write_text('lock-version = "1.0"\n', encoding="utf-8")
    pack_config = write_config(tmp_path / "pack.json", kit.pack_config(pylock, "framework-sci"))
    args = pack_args(config, pack_config, out, "framework-sci", pylock)
    assert main(["pack", *args]) == 0
    published = json.loads((out / "framework-sci.json").read_text(encoding="utf-8"))
    assert published["archive_name"] == "framework-sci.tar.zst"
    assert published["python_implementation"] == "cpython@3.11.99"
    assert published["runtime_archive"] == {
        "file": runtime_archive.name, "sha256": sha256_hex(runtime_archive), "origin": "local"
    }  # fmt: skip
    (tmp_path / "extracted").mkdir()
    top = extract_archive(out / "framework-sci.tar.zst", tmp_path / "extracted", top="framework-sci")
    assert (top / "lib/python3.11/site-packages/six.py").is_file()
    assert (top / "bin" / "python").read_bytes() == (venv_files / "bin" / "python").read_bytes()
    assert {rel: os.readlink(top / rel) for rel in POSIX_VENV_SYMLINKS} == POSIX_VENV_SYMLINKS
    assert read_json(LayerRecord, top / LAYER_RECORD).runtime_source == runtime.source
    assert json.loads((out / "framework-sci.cdx.json").read_text(encoding="utf-8"))["bomFormat"] == "CycloneDX"

    pylock.write_text('lock-version = "1.0"\n# edited\n', encoding="utf-8")
    assert main(["pack", *args]) == 1
    assert capsys.readouterr().err.startswith("error: pylock.framework-sci.toml changed after //stacks:lock")
    pylock.write_text('lock-version = "1.0"\n', encoding="utf-8")

    cfg = dataclasses.replace(cfg, wheels=(*cfg.wheels, kit.wheel(wheels["six-1.17.0"], posix_trees["six-1.17.0"])))
    write_config(config, cfg)
    (out / "framework-sci.tar.zst").unlink()
    assert main(["pack", *args]) == 1
    assert "both install lib/python3.11/site-packages/six.py" in capsys.readouterr().err
    assert not (out / "framework-sci.tar.zst").exists()
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []  # no scratch tree left behind


def tree_members(top: Path) -> dict[str, str]:
    """relative path -> "dir", "link -> target" or the sha256 of a file, of every entry below `top`."""
    found = {}
    for path in sorted(top.rglob("*")):
        if path.is_symlink():
            found[path.relative_to(top).as_posix()] = f"link -> {os.readlink(path)}"
        elif path.is_dir():
            found[path.relative_to(top).as_posix()] = "dir"
        else:
            found[path.relative_to(top).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def test_config_of_another_version_is_one_line_naming_the_file(kit, fixture_runtime, tmp_path, capsys):
    """A config written by rules/ of another version (here: an old field, one missing) is refused, not guessed at."""
    data = json.loads(to_json(kit.compose_config("framework-sci", "framework", runtime=fixture_runtime)))
    data["windows"] = False
    del data["runtime_record"]
    config = tmp_path / "compose.json"
    config.write_text(json.dumps(data), encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    assert main(["compose", "--config", str(config), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {config}: ComposeConfig fields differ (missing: runtime_record; unknown: windows); ")
    assert err.count("\n") == 1
    assert list(out.iterdir()) == []


def lock_spec(tmp_path: Path, requirements: list[str], exclude_newer: str = "") -> Path:
    """The spec file rules/private/stack_lock.bzl writes, for a stack of one runtime layer."""
    layer = {
        "key": "stacks:cpython3_11", "kind": "runtime", "env_name": "cpython3_11", "python": "3.11",
        "python_version": "", "requirements": requirements, "requirements_files": [], "dependency_groups": [],
        "package_indexes": {}, "priority_indexes": [],
        "lower": [], "platforms": ["linux_x86_64"],
        "pylock": "pylock.cpython3_11.toml", "linux_target": "glibc@2.28", "macosx_target": "14.0", "versioned": False,
    }  # fmt: skip
    spec = tmp_path / "lock.spec.json"
    document = {"lock": "stacks:lock", "exclude_newer": exclude_newer, "indexes": {}, "layers": [layer]}
    spec.write_text(json.dumps(document), encoding="utf-8")
    return spec


def lock_outputs(tmp_path: Path, uv: Path) -> tuple[Path, list[str]]:
    """The lock verb's output directory (made) and the arguments naming it, the workspace and uv."""
    out = tmp_path / "stacks"
    out.mkdir()
    names = ["--out-dir", str(out), "--index-name", "venvstacks_lock.json", "--workspace", str(tmp_path)]
    return out, [*names, "--uv", str(uv)]


def test_lock_verb_with_uv_arguments_and_previous_index(uv, tmp_path, capsys):
    out, common = lock_outputs(tmp_path, uv)
    spec = lock_spec(tmp_path, ["packaging<25"])
    # as `bazel run //stacks:lock -- --exclude-newer ...` passes it (the script always puts `--` first)
    assert main(["lock", "--spec", str(spec), *common, "--", "--exclude-newer", "2024-06-01T00:00:00Z"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "[1/1] resolving //stacks:cpython3_11 for linux_x86_64\n"  # uv itself runs quietly
    assert captured.out == f"  cpython3_11: 1 package; new layer: +packaging 24.0\nlocked 1 layers into {out}\n"
    lock = tomllib.loads((out / "pylock.cpython3_11.toml").read_text(encoding="utf-8"))
    assert [(p["name"], p["version"]) for p in lock["packages"]] == [("packaging", "24.0")]
    index = json.loads((out / "venvstacks_lock.json").read_text(encoding="utf-8"))
    assert index["layers"]["stacks:cpython3_11"]["inputs"]["requirements"] == ["packaging<25"]
    # relocking without the cut-off keeps the version locked before
    assert main(["lock", "--spec", str(spec), *common, "--"]) == 0
    assert capsys.readouterr().out == f"  cpython3_11: 1 package; unchanged\nlocked 1 layers into {out}\n"
    lock = tomllib.loads((out / "pylock.cpython3_11.toml").read_text(encoding="utf-8"))
    assert [(p["name"], p["version"]) for p in lock["packages"]] == [("packaging", "24.0")]


def test_lock_verb_user_errors(uv, tmp_path, capsys):
    out, common = lock_outputs(tmp_path, uv)
    common.append("--")
    progress = "[1/1] resolving //stacks:cpython3_11 for linux_x86_64\n"
    assert main(["lock", "--spec", str(lock_spec(tmp_path, ["six=="])), *common]) == 1
    assert capsys.readouterr().err.startswith(progress + "error: //stacks:cpython3_11: requirement 'six=='")
    assert main(["lock", "--spec", str(lock_spec(tmp_path, ["sgmllib3k==1.0.0"])), *common]) == 1
    err = capsys.readouterr().err
    assert err.startswith(progress + "error: //stacks:cpython3_11 (linux_x86_64): uv could not resolve")
    assert "sgmllib3k" in err
    assert main(["lock", "--spec", str(lock_spec(tmp_path, ["six"], exclude_newer="June 2021")), *common]) == 1
    assert capsys.readouterr().err == (
        "error: stacks:lock: exclude_newer 'June 2021' is not a date or an RFC 3339 time "
        "(e.g. '2025-06-30' or '2025-06-30T12:00:00Z'; a date means midnight UTC); durations such as '1 week' are "
        "refused, since a lock must not depend on when it is taken\n"
    )
    assert list(out.iterdir()) == []


def test_lock_verb_passes_the_stack_exclude_newer_to_uv_and_records_it(uv, tmp_path, capsys):
    """six 1.17.0 was released in December 2024: a stack locked as of June 2021 gets 1.16.0."""
    out, args = lock_outputs(tmp_path, uv)
    args.append("--")
    spec = lock_spec(tmp_path, ["six"], exclude_newer="2021-06-01")
    assert main(["lock", "--spec", str(spec), *args]) == 0
    assert capsys.readouterr().out == f"  cpython3_11: 1 package; new layer: +six 1.16.0\nlocked 1 layers into {out}\n"
    lock = tomllib.loads((out / "pylock.cpython3_11.toml").read_text(encoding="utf-8"))
    assert [(p["name"], p["version"]) for p in lock["packages"]] == [("six", "1.16.0")]
    index = json.loads((out / "venvstacks_lock.json").read_text(encoding="utf-8"))
    assert (index["version"], index["exclude_newer"]) == (2, "2021-06-01")
    entry = index["layers"]["stacks:cpython3_11"]
    assert (entry["install_target"], entry["lock_version"]) == ("cpython3_11", 1)
    assert entry["locked_at"] == "2021-06-01T00:00:00Z"  # the time of the lock, at most exclude_newer
    # without the limit, upgraded: the newest six, the new limit recorded, the lock time now
    unlimited = lock_spec(tmp_path, ["six"])
    assert main(["lock", "--spec", str(unlimited), *args, "--upgrade"]) == 0
    summary = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"  cpython3_11: 1 package; six 1\.16\.0 -> 1\.(1[7-9]|[2-9]\d)\.\d+", summary[0])
    index = json.loads((out / "venvstacks_lock.json").read_text(encoding="utf-8"))
    assert index["exclude_newer"] == ""
    assert index["layers"]["stacks:cpython3_11"]["locked_at"] > "2025"


def check_lock(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["check-lock", "--lock", "//stacks:lock", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_check_lock_verb(tmp_path, capsys):
    """What stack_lock_test runs (and the check of a layer's requirements files): the problems the build found, and
    each locked file (pylock, requirements files) against its sha256 when locked."""
    pylocks = {name: tmp_path / f"pylock.{name}.toml" for name in ("cpython3_11", "framework-sci")}
    for name, path in pylocks.items():
        path.write_text(f'lock-version = "1.0"\n# {name}\n', encoding="utf-8")
    current = [arg for p in pylocks.values() for arg in ("--file", str(p), sha256_hex(p), f"stacks/{p.name}")]
    assert check_lock(capsys, *current) == (0, "the lock of //stacks:lock is current\n", "")
    assert check_lock(capsys) == (0, "the lock of //stacks:lock is current\n", "")  # nothing locked to check

    stale = "the spec of //stacks:sci changed since it was locked"
    code, out, err = check_lock(capsys, "--problem", stale, *current)
    assert (code, out) == (1, "")
    assert err == (
        "error: the lock of //stacks:lock is stale:\n"
        f"  - {stale}\n"
        "run `bazel run //stacks:lock` and commit what it writes\n"
    )

    pylocks["framework-sci"].write_text('lock-version = "1.0"\n# edited by hand\n', encoding="utf-8")
    code, out, err = check_lock(capsys, *current)
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        "error: the lock of //stacks:lock is stale:",
        "  - stacks/pylock.framework-sci.toml changed after //stacks:lock locked it",
        "run `bazel run //stacks:lock` and commit what it writes",
    ]

    code, _, err = check_lock(capsys, "--problem", "exclude_newer is '2025-01-01' but the index was written with ''",
                              "--problem", stale, *current)  # fmt: skip
    assert code == 1
    assert err.splitlines()[1:4] == [
        "  - exclude_newer is '2025-01-01' but the index was written with ''",
        f"  - {stale}",
        "  - stacks/pylock.framework-sci.toml changed after //stacks:lock locked it",
    ]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything that would point Python or `run` elsewhere, plus `extra`."""
    drop = ("PYTHON", "VIRTUAL_ENV", "BUILD_WORKSPACE_DIRECTORY", "VENVSTACKS_RUN_DIR", "XDG_CACHE_HOME")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)} | extra


def test_deploy_verb(published_stack, tmp_path):
    """`deploy` prints each layer it deployed."""
    to = tmp_path / "deployed"
    result = subprocess.run(
        [sys.executable, str(ENTRY), "deploy", "--to", str(to), *map(str, published_stack[:2])],
        capture_output=True,
        text=True,
        env=clean_env(),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"deployed cpython3_11 -> {to / 'cpython3_11'}",
        f"deployed framework-sci -> {to / 'framework-sci'}",
    ]


def test_run_verb_deploys_once_per_workspace(published_stack, tmp_path, monkeypatch):
    """`run` (what `bazel run` of a layer execs) deploys into a directory of its workspace and label below
    $VENVSTACKS_RUN_DIR, reuses it on the next run, and runs the launch module with the arguments after `--`."""
    base = tmp_path / "run dir"
    metadata = [arg for path in published_stack for arg in ("--metadata", str(path))]

    def run(workspace: Path) -> tuple[Path, list[str]]:
        env = {"VENVSTACKS_RUN_DIR": str(base), "BUILD_WORKSPACE_DIRECTORY": str(workspace)}
        result = subprocess.run(
            [sys.executable, str(ENTRY), "run", "--label", "//apps:hello", *metadata, "--", "x", "--y"],
            capture_output=True,
            text=True,
            env=clean_env(**env),
        )
        assert result.returncode == 0, result.stderr
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return run_directory("//apps:hello", published_stack[-1]), result.stdout.splitlines()

    first, out = run(tmp_path / "checkout a")
    assert first.parent == base
    assert first.name.startswith("app-hello-")
    assert out[0] == f"hello from {first / 'app-hello'}"
    assert out[-1] == "args ['x', '--y']"
    sentinel = first / "framework-sci" / "sentinel"
    sentinel.write_text("kept", encoding="utf-8")

    again, out = run(tmp_path / "checkout a")  # the same checkout: the same directory, unchanged layers kept
    assert again == first
    assert out[0] == f"hello from {first / 'app-hello'}"
    assert sentinel.read_text(encoding="utf-8") == "kept"

    other, out = run(tmp_path / "checkout b")  # another checkout: a directory of its own
    assert other != first
    assert other.parent == base
    assert out[0] == f"hello from {other / 'app-hello'}"
    assert not (other / "framework-sci" / "sentinel").exists()
    assert sentinel.read_text(encoding="utf-8") == "kept"
    assert sorted(p.name for p in base.iterdir()) == sorted(
        [first.name, other.name, f".{first.name}.lock", f".{other.name}.lock"]
    )


def test_run_directory_is_keyed_by_workspace_label_and_platform(published_stack, tmp_path, monkeypatch):
    top = published_stack[-1]
    monkeypatch.setenv("VENVSTACKS_RUN_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("BUILD_WORKSPACE_DIRECTORY", "/src/a")
    here = run_directory("//apps:hello", top)
    assert here == run_directory("//apps:hello", top)  # stable
    assert here.parent == tmp_path / "runs"
    assert re.fullmatch(r"app-hello-[0-9a-f]{16}", here.name)
    assert run_directory("//apps:other", top) != here
    other_platform = tmp_path / "app-hello-linux_aarch64.json"
    other_platform.write_text(
        json.dumps(json.loads(top.read_text(encoding="utf-8")) | {"target_platform": "linux_aarch64"}), encoding="utf-8"
    )
    assert run_directory("//apps:hello", other_platform) != here
    monkeypatch.setenv("BUILD_WORKSPACE_DIRECTORY", "/src/b")
    elsewhere = run_directory("//apps:hello", top)
    assert elsewhere != here
    assert elsewhere.parent == here.parent
    monkeypatch.delenv("BUILD_WORKSPACE_DIRECTORY")  # run outside `bazel run`: still one fixed directory
    assert run_directory("//apps:hello", top) not in (here, elsewhere)
    assert run_directory("//apps:hello", top) == run_directory("//apps:hello", top)
    # the default base directory: below the user's cache directory
    monkeypatch.delenv("VENVSTACKS_RUN_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert run_directory("//apps:hello", top).parent == tmp_path / "cache" / "rules_venvstacks" / "run"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert run_directory("//apps:hello", top).parent == tmp_path / "home" / ".cache" / "rules_venvstacks" / "run"


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["no-such-verb"],
        ["compose", "--config", "x.json"],
        ["pack", "--layer", "l", "--archive", "a", "--metadata", "m", "--pylock", "p", "--config", "c"],  # --sbom
        ["run", "--metadata", "m.json", "--", "x"],  # --label is required
        ["run", "--label", "//apps:hello", "--deploy-dir", "d"],  # --metadata is required
        ["check-lock"],  # --lock is required
        ["check-lock", "--lock", "//stacks:lock", "--file", "pylock.x.toml", "0" * 64],  # --file PATH SHA256 NAME
    ],
)
def test_bad_command_lines_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "usage: stacktool" in capsys.readouterr().err
