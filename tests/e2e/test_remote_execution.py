"""Remote execution of the MLX example on a real REAPI server on loopback: BuildGrid (SQL scheduler on a private
PostgreSQL) with one buildbox worker, all started and stopped here (see servers.py).

The build registers an execution platform carrying the worker pool's `exec_properties` (OSFamily, ISA), exactly as
docs/ci-and-remote.md tells users to; BuildGrid only hands an action to a worker whose properties match.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import servers
from harness import (
    EXAMPLES,
    MLX_BUILD_MNEMONICS,
    MLX_LAYERS,
    Workspace,
    assert_same_published_layers,
    copy_workspace,
    read_json_stream,
)

EXEC_PROPERTIES = {"OSFamily": "linux", "ISA": "x86-64"}
# The pool's execution platform: the constraints of rules_venvstacks' linux_x86_64 (so the helper tool's Linux
# toolchain is chosen) plus the properties the workers advertise.
REMOTE_PLATFORM = """\
platform(
    name = "remote_linux_x86_64",
    exec_properties = {properties},
    parents = ["@rules_venvstacks//platforms:linux_x86_64"],
)
"""


@pytest.fixture(scope="module")
def executor() -> Iterator[str]:
    yield from servers.serve_or_skip(servers.remote_executor, "no remote execution server here")


@pytest.fixture(scope="module")
def remote(executor: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, list[dict]]]:
    """The MLX example built with every action on the remote worker; yields it and its execution log."""
    base = tmp_path_factory.mktemp("remote_execution")
    ws = copy_workspace(EXAMPLES / "mlx", base / "checkout", base / "output_base")
    (ws.path / "BUILD.bazel").write_text(REMOTE_PLATFORM.format(properties=repr(EXEC_PROPERTIES)))
    (ws.path / "user.bazelrc").write_text(
        f"build --remote_executor={executor}\n"
        "build --extra_execution_platforms=//:remote_linux_x86_64\n"
        "build --remote_timeout=600\n"
        "build --jobs=8\n"
    )
    log = base / "execution_log.json"
    try:
        ws.bazel("build", "//stacks:mlx_app", f"--execution_log_json_file={log}")
        yield ws, read_json_stream(log)
    finally:
        ws.discard()


def test_every_action_runs_on_the_remote_worker(remote: tuple[Workspace, list[dict]]) -> None:
    _, log = remote
    assert {e["mnemonic"] for e in log} == MLX_BUILD_MNEMONICS
    assert [e for e in log if e["runner"] != "remote" or e.get("cacheHit")] == []
    counts = Counter(e["mnemonic"] for e in log)
    assert counts["VenvstacksPack"] == len(MLX_LAYERS)
    for entry in log:  # the pool's properties travel with every action
        properties = {p["name"]: p["value"] for p in entry["platform"]["properties"]}
        assert properties == EXEC_PROPERTIES, entry["mnemonic"]


def test_remote_outputs_are_bit_identical_to_a_local_build(
    remote: tuple[Workspace, list[dict]], tmp_path: Path
) -> None:
    ws, _ = remote
    local = copy_workspace(EXAMPLES / "mlx", tmp_path / "local", tmp_path / "local_output_base")
    try:
        local.bazel("build", "//stacks:mlx_app")
        # A tree-artifact input reaches a remote action with its symlinks dereferenced (Bazel defines tree artifacts
        # as regular files, bazelbuild/bazel#16361); Pack composes the layer itself, so its symlinks never cross an
        # action boundary and the archives are the local ones, bit for bit.
        assert_same_published_layers(local, ws)
    finally:
        local.discard()


def test_layer_tests_pass_on_the_remote_worker(remote: tuple[Workspace, list[dict]]) -> None:
    """Deploying each layer and importing its packages also runs remotely (the worker is the same platform)."""
    ws, _ = remote
    log = ws.output_base / "test_execution_log.json"
    result = ws.bazel("test", "//stacks:all", f"--execution_log_json_file={log}", check=False)
    assert "4 tests pass" in result.stdout + result.stderr, result.stderr[-4000:]
    spawns = read_json_stream(log)
    tests = [e for e in spawns if e["commandArgs"][0].endswith("/test-setup.sh")]
    assert sorted(e["commandArgs"][1] for e in tests) == sorted(
        f"stacks/{name}_test.sh" for name in [*MLX_LAYERS, "lock"]
    )  # each layer's test and the lock's
    # The tests and everything else this command ran (their XML reports), all on the worker.
    assert all(e["runner"] == "remote" and not e.get("cacheHit") for e in spawns), [e["runner"] for e in spawns]
