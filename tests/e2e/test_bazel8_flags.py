"""The Bazel 8 leg: the MLX example and the module's own Bazel tests with Bazel 8's defaults (and the stricter
settings Bazel 9 moves to) turned on by the flags Bazel 7.7.1 already knows.

The most visible of them, `--incompatible_use_plus_in_repo_names`, renames every canonical repository
(`rules_venvstacks~~venvstacks~whl_mlx_...` becomes `rules_venvstacks++venvstacks+whl_mlx_...`): paths of actions,
runfiles and the exec log change, and nothing may parse the old names.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import BAZEL, EXAMPLES, MLX_BUILD_MNEMONICS, ROOT, Workspace, copy_workspace, read_json_stream, remove_tree

BAZEL8_FLAGS = [
    # Defaults of Bazel 8.
    "--noenable_workspace",
    "--incompatible_disallow_empty_glob",
    "--incompatible_use_plus_in_repo_names",
    "--nolegacy_external_runfiles",
    "--incompatible_disable_native_repo_rules",
    # Stricter settings on the way to Bazel 9 (natives without load(), struct providers, old label APIs...).
    "--incompatible_autoload_externally=",
    "--incompatible_disallow_struct_provider_syntax",
    "--incompatible_disable_target_provider_fields",
    "--incompatible_struct_has_no_methods",
    "--incompatible_no_implicit_watch_label",
    "--incompatible_disable_starlark_host_transitions",
    "--incompatible_config_setting_private_default_visibility",
    "--incompatible_no_implicit_file_export",
    "--incompatible_auto_exec_groups",
]
# Also known to 7.7.1 but left out: they break Bazel 7.7.1's own dependencies, not this module, and Bazel 8 ships
# fixed ones. --incompatible_stop_exporting_language_modules: @bazel_tools//tools/jdk:launcher_flag_alias.bzl fails
# to load; --noincompatible_enable_deprecated_label_apis: rules_license's license_kind rule fails analysis.
LOCK_FILES = ("venvstacks_lock.json", "pylock.cpython3_11.toml", "pylock.framework-mlx.toml", "pylock.app-mlx_app.toml")


@pytest.fixture(scope="module")
def bazel8(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    base = tmp_path_factory.mktemp("bazel8")
    ws = copy_workspace(EXAMPLES / "mlx", base / "mlx", base / "output_base")
    (ws.path / "user.bazelrc").write_text("".join(f"common {flag}\n" for flag in BAZEL8_FLAGS))
    yield ws
    ws.discard()


def test_build_uses_bazel8_repo_names(bazel8: Workspace) -> None:
    log = bazel8.output_base / "execution_log.json"
    bazel8.bazel("build", "//stacks:mlx_app", f"--execution_log_json_file={log}")
    entries = read_json_stream(log)
    assert {e["mnemonic"] for e in entries} == MLX_BUILD_MNEMONICS
    for entry in entries:
        # The interpreter the toolchain's action wrote, or (that action) the runtime archive it unpacks.
        args = entry["commandArgs"]
        if entry["mnemonic"] == "VenvstacksToolEnvironment":
            assert "'external/rules_venvstacks++venvstacks+cpython_3_11_linux_x86_64/runtime.tar.gz'" in args[2], args
        else:
            assert re.match(r"bazel-out/[^/]+/bin/external/rules_venvstacks\+\+venvstacks\+", args[0]), args[:3]
        assert not any("~" in arg for arg in entry["commandArgs"]), entry["commandArgs"]


def test_layer_tests_and_run_pass(bazel8: Workspace) -> None:
    result = bazel8.bazel("test", "//stacks:all")
    # the three layers' tests and the lock's test
    assert "4 tests pass" in result.stdout + result.stderr, result.stderr
    run = bazel8.bazel("run", "//stacks:mlx_app")
    assert "MLX 0.32.4 on Device(cpu, 0)" in run.stdout


def test_relock_rewrites_nothing(bazel8: Workspace) -> None:
    stacks = bazel8.path / "stacks"
    before = {name: (stacks / name).read_bytes() for name in LOCK_FILES}
    bazel8.bazel("run", "//stacks:lock")
    assert {name: (stacks / name).read_bytes() for name in LOCK_FILES} == before


def test_module_bazel_tests_pass(tmp_path: Path) -> None:
    """`bazel test //...` of the module itself (analysis tests, generated docs...), with its own output base and no
    convenience links (the checkout's bazel-* links stay the developer's)."""
    output_base = tmp_path / "output_base"
    cmd = [str(BAZEL), f"--output_base={output_base}", "--max_idle_secs=60", "test", "//...", "--symlink_prefix=/"]
    try:
        result = subprocess.run([*cmd, *BAZEL8_FLAGS], cwd=ROOT, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr[-8000:]
    finally:
        subprocess.run([str(BAZEL), f"--output_base={output_base}", "shutdown"], cwd=ROOT, capture_output=True)
        remove_tree(output_base)
