"""Hermeticity of the MLX example build, checked on a real build.

The whole build and the layer tests run (1) in a network namespace that has nothing but loopback, so no action and no
repository rule can reach the network (Bazel's own `--sandbox_default_allow_network=false` is set too, but the
processwrapper sandbox this machine's nested Bazel falls back to cannot enforce it), (2) with
`--incompatible_strict_action_env`, and (3) with a PATH, for actions and tests, whose first directory holds `python`,
`python3` and `python3.11` impostors that record being run and fail: the helper tool must always run with the
toolchain's interpreter, which an action writes from the runtime archive with the exec platform's `/bin/sh` and
`/bin/tar`. Then every output is scanned for the workspace path, the output base and the user's home.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import zstandard
from harness import BAZEL, EXAMPLES, MLX_BUILD_MNEMONICS, MLX_LAYERS, Workspace, copy_workspace, read_json_stream

RUNTIME_LAYER = "cpython3_11"
# The interpreter every action runs: python-build-standalone 3.11 for the exec platform, written by the toolchain's
# action from the module extension's runtime repository (`rules_venvstacks~~venvstacks~` with Bazel 7's names,
# `rules_venvstacks++venvstacks+` with Bazel 8's), with the flags that make it ignore the environment and site.
TOOL_INTERPRETER = re.compile(
    r"bazel-out/[^/]+/bin/external/rules_venvstacks[~+]{1,2}venvstacks[~+]venvstacks_toolchains/"
    r"linux_\w+_environment/python/bin/python3\.11"
)
# The one action before any Python: the exec platform's shell runs its tar, then the interpreter unpacked, which
# writes the one above (and the unpacked runtime is deleted).
ENVIRONMENT = "VenvstacksToolEnvironment"
UNPACK_THEN_RUN = re.compile(
    r"mkdir -p '(?P<dir>[^']+)' && '/bin/tar' '-xzf' 'external/[^']+/runtime\.tar\.gz' .* && "
    r"'(?P=dir)/python/bin/python3\.11' \"\$@\" && rm -rf '(?P=dir)'"
)
INTERPRETER_FLAGS = ["-S", "-E", "-s", "-B"]
# The only variables an action may get: fixed values set by the rules, never PATH or anything from the host.
FIXED_ENV = {"LC_ALL", "PYTHONHASHSEED", "SOURCE_DATE_EPOCH", "TZ"}
IMPOSTOR = '#!/bin/sh\necho "$0 $*" >> "{marker}"\necho "python from PATH must not run" >&2\nexit 97\n'
HOME = Path.home()


@dataclass
class OfflineBuild:
    ws: Workspace
    log: list[dict[str, Any]]
    test_output: str
    impostor_marker: Path


def loopback_only(cmd: list[str]) -> list[str]:
    """`cmd` in a new network namespace with only the loopback interface up (Bazel's client talks to its server
    over loopback)."""
    return ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *cmd]


def network_namespaces_work() -> str | None:
    """None when loopback_only() works here and really cuts the network off; else why not."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs `unshare` (util-linux) and `ip` (iproute2)"
    probe = (
        "import socket\ntry:\n    socket.create_connection(('1.1.1.1', 443), timeout=3)\nexcept OSError:\n    pass\n"
    )
    probe += "else:\n    raise SystemExit('network reachable')\n"
    result = subprocess.run(loopback_only(["python3", "-c", probe]), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return f"cannot make a network namespace without network here: {result.stderr.strip()[-500:]}"
    return None


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OfflineBuild]:
    why_not = network_namespaces_work()
    if why_not:
        pytest.skip(why_not)
    base = tmp_path_factory.mktemp("hermeticity")
    ws = copy_workspace(EXAMPLES / "mlx", base / "checkout", base / "output_base")
    impostors = base / "impostors"
    impostors.mkdir()
    marker = base / "impostors_ran.txt"
    for name in ("python", "python3", "python3.11"):
        (impostors / name).write_text(IMPOSTOR.format(marker=marker))
        (impostors / name).chmod(0o755)
    path = f"{impostors}:/usr/bin:/bin"
    flags = [
        "--sandbox_default_allow_network=false",
        "--incompatible_strict_action_env",
        f"--action_env=PATH={path}",
        f"--host_action_env=PATH={path}",
        f"--test_env=PATH={path}",
    ]
    log = base / "execution_log.json"

    def bazel(*args: str) -> str:
        # --batch: no server outlives the command (a server in the namespace could not be reached from outside).
        cmd = loopback_only([str(BAZEL), "--batch", f"--output_base={ws.output_base}", *args])
        result = subprocess.run(cmd, cwd=ws.path, capture_output=True, text=True, check=False)
        assert result.returncode == 0, f"bazel {' '.join(args)} failed offline:\n{result.stderr[-8000:]}"
        return result.stdout + result.stderr

    bazel("build", "//stacks:mlx_app", "--output_groups=+trees", *flags, f"--execution_log_json_file={log}")
    test_output = bazel("test", "//stacks:all", *flags)
    yield OfflineBuild(ws, read_json_stream(log), test_output, marker)
    ws.discard()


def test_build_and_layer_tests_pass_without_network_and_without_python_on_path(offline: OfflineBuild) -> None:
    assert "4 tests pass" in offline.test_output
    assert not offline.impostor_marker.exists(), offline.impostor_marker.read_text()
    assert {e["mnemonic"] for e in offline.log} == MLX_BUILD_MNEMONICS | {"VenvstacksCompose"}
    assert all(not e.get("cacheHit") for e in offline.log)  # really executed, offline
    # Pack runs unsandboxed (rules/private/layer.bzl: PACK_EXECUTION_REQUIREMENTS), the other actions sandboxed;
    # the next tests check that Pack's outputs hold no path of this machine all the same.
    runners = {(e["mnemonic"], e["runner"]) for e in offline.log}
    assert {runner for mnemonic, runner in runners if mnemonic == "VenvstacksPack"} == {"local"}, runners
    assert all(runner.endswith("sandbox") for mnemonic, runner in runners if mnemonic != "VenvstacksPack"), runners


def test_every_action_runs_the_toolchain_interpreter_with_a_fixed_environment(offline: OfflineBuild) -> None:
    for entry in offline.log:
        argv = entry["commandArgs"]
        if entry["mnemonic"] == ENVIRONMENT:
            assert argv[:2] == ["/bin/sh", "-c"] and UNPACK_THEN_RUN.fullmatch(argv[2]), argv[:3]
            assert argv[3:8] == ["sh", *INTERPRETER_FLAGS], argv[3:8]
        else:
            assert TOOL_INTERPRETER.fullmatch(argv[0]), argv[0]
            assert argv[1:5] == INTERPRETER_FLAGS, argv[:6]
        names = {v["name"] for v in entry["environmentVariables"]}
        assert "PATH" not in names and names <= FIXED_ENV, entry["environmentVariables"]
        # Every input is declared and inside the exec root (relative), none is a host path.
        assert all(not i["path"].startswith("/") for i in entry["inputs"]), entry["mnemonic"]


def leaked_paths(ws: Workspace) -> list[bytes]:
    """What no output may contain: the workspace, the output base, Bazel's output user root (under the home) and
    any path into the user's home directory."""
    needles = {os.fsencode(p) for p in (ws.path, ws.output_base, ws.path.resolve(), ws.output_base.resolve())}
    needles |= {os.fsencode(HOME / child.name) for child in HOME.iterdir()}
    return sorted(needles)


def allowed_in(name: str) -> list[bytes]:
    """Occurrences to ignore in one file. The local test runtime is made from a pyenv CPython built under
    /root/.pyenv (see tools/make_local_runtime.py), whose prefix its binaries and sysconfig data name; a real
    python-build-standalone names /install instead. Only the runtime layer's files get this exception."""
    return [os.fsencode(HOME / ".pyenv") + b"/"] if name.split("/")[0] == RUNTIME_LAYER else []


def findings(name: str, data: bytes, needles: list[bytes]) -> list[str]:
    for allowed in allowed_in(name):
        data = data.replace(allowed, b"")
    home_itself = re.compile(re.escape(os.fsencode(HOME)) + rb"(?=[\"'\0\n:;]|$)")
    found = [f"{name}: {needle.decode()}" for needle in needles if needle in data]
    return found + [f"{name}: {HOME} itself" for _ in home_itself.finditer(data)]


def layer_name(bin_path: Path, path: Path) -> str:
    """The layer a file belongs to (its env_name first), for the runtime exception; "" for other outputs."""
    parts = path.relative_to(bin_path).parts
    if len(parts) > 2 and parts[0] == "stacks" and parts[1].endswith(".layer") and parts[2] in MLX_LAYERS.values():
        return "/".join(parts[2:])
    return "<output>/" + "/".join(parts)


def test_no_output_contains_a_build_machine_path(offline: OfflineBuild) -> None:
    bin_path = offline.ws.output_base / "execroot" / "_main" / "bazel-out" / "k8-fastbuild" / "bin"
    needles = leaked_paths(offline.ws)
    problems: list[str] = []
    scanned = 0
    # Installed trees (layers and per-wheel), archives, metadata, the actions' configs, the run script.
    roots = [bin_path / "stacks", *sorted(bin_path.glob("external/*/installed_*"))]
    for root in roots:
        for directory, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if not d.endswith(".runfiles")]  # Bazel's own links into the exec root
            for file in files:
                path = Path(directory) / file
                if file.endswith((".runfiles_manifest", ".repo_mapping")):
                    continue
                if path.is_symlink():
                    if os.readlink(path).startswith("/"):
                        problems.append(f"{path}: absolute symlink -> {os.readlink(path)}")
                    continue
                scanned += 1
                problems += findings(layer_name(bin_path, path), path.read_bytes(), needles)
    for layer, env_name in MLX_LAYERS.items():
        archive = bin_path / "stacks" / f"{layer}.layer" / f"{env_name}-linux_x86_64.tar.zst"
        with (
            archive.open("rb") as raw,
            zstandard.ZstdDecompressor().stream_reader(raw) as stream,
            tarfile.open(fileobj=stream, mode="r|") as tar,
        ):
            for member in tar:
                problems += findings(member.name, member.name.encode() + member.linkname.encode(), needles)
                if member.isfile():
                    data = tar.extractfile(member)
                    assert data is not None
                    problems += findings(member.name, data.read(), needles)
    assert scanned > 1000  # the trees were there
    assert problems == [], "\n".join(problems[:50])
