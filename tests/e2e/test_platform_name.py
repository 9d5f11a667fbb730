"""The harness end to end: a real Bazel builds a workspace that uses rules_venvstacks' platforms."""

from __future__ import annotations

import platform

import pytest


def test_host_platform_is_named(workspace) -> None:
    ws = workspace("platform_name")
    ws.bazel("build", "//:name")
    expected = {"x86_64": "linux_x86_64", "aarch64": "linux_aarch64"}[platform.machine()]
    assert (ws.bazel_bin() / "name.txt").read_text() == expected + "\n"


@pytest.mark.parametrize("target", ["macosx_arm64", "win_amd64"])
def test_other_platforms_from_this_host(workspace, target: str) -> None:
    ws = workspace("platform_name")
    ws.bazel("build", "//:name", f"--platforms=@rules_venvstacks//platforms:{target}")
    assert (ws.bazel_bin() / "name.txt").read_text() == target + "\n"
