"""Tests for stacktool.wheel_choice: which of a package's wheels a target platform installs."""

from __future__ import annotations

import pytest
from stacktool.platforms import DeploymentTarget, platform
from stacktool.wheel_choice import NoWheelError, WheelFile, choose_wheel

DEFAULT = DeploymentTarget.parse("glibc@2.28", "13.0")


def wheels(*filenames: str) -> list[WheelFile]:
    return [WheelFile(name, f"https://files.example/{name}", f"{index:064x}") for index, name in enumerate(filenames)]


def choose(names: list[str], name: str, target: DeploymentTarget = DEFAULT, python: str = "3.11") -> str:
    return choose_wheel("pkg", wheels(*names), platform(name), python, target).filename


MAC = ["pkg-1.0-cp311-cp311-macosx_14_0_arm64.whl", "pkg-1.0-cp311-cp311-macosx_15_0_arm64.whl"]


@pytest.mark.parametrize("order", [MAC, MAC[::-1]])
def test_most_specific_macos_wheel_wins(order):
    assert choose(order, "macosx_arm64", DeploymentTarget.parse("glibc@2.28", "15.0")) == MAC[1]
    assert choose(order, "macosx_arm64", DeploymentTarget.parse("glibc@2.28", "14.0")) == MAC[0]


def test_macos_wheel_newer_than_target_is_rejected():
    with pytest.raises(NoWheelError):
        choose([MAC[1]], "macosx_arm64", DeploymentTarget.parse("glibc@2.28", "14.0"))
    # universal2 serves arm64 too, below an arm64-specific wheel of the same version
    universal = "pkg-1.0-cp311-cp311-macosx_10_9_universal2.whl"
    assert choose([universal], "macosx_arm64") == universal
    assert choose([universal, MAC[0]], "macosx_arm64", DeploymentTarget.parse("glibc@2.28", "14.0")) == MAC[0]


def test_manylinux_wheel_newer_than_glibc_target_is_rejected():
    new = "pkg-1.0-cp311-cp311-manylinux_2_35_x86_64.whl"
    old = "pkg-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    glibc_228 = DeploymentTarget.parse("glibc@2.28", "13.0")
    with pytest.raises(NoWheelError) as error:
        choose([new], "linux_x86_64", glibc_228)
    assert "glibc 2.28" in str(error.value)
    assert new in str(error.value)
    assert choose([new, old], "linux_x86_64", glibc_228) == old
    assert choose([new, old], "linux_x86_64", DeploymentTarget.parse("glibc@2.35", "13.0")) == new


def test_legacy_manylinux_alias_alone_is_accepted():
    legacy = "pkg-1.0-cp311-cp311-manylinux2014_aarch64.whl"
    assert choose([legacy], "linux_aarch64") == legacy


def test_wrong_architecture_or_os_is_rejected():
    for name in ("pkg-1.0-cp311-cp311-manylinux_2_17_aarch64.whl", "pkg-1.0-cp311-cp311-win_amd64.whl"):
        with pytest.raises(NoWheelError):
            choose([name], "linux_x86_64")
    assert choose(["pkg-1.0-cp311-cp311-win_arm64.whl", "pkg-1.0-cp311-cp311-win_amd64.whl"], "win_amd64") == (
        "pkg-1.0-cp311-cp311-win_amd64.whl"
    )


CP311 = "pkg-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"
ABI3 = "pkg-1.0-cp38-abi3-manylinux_2_28_x86_64.whl"
PURE = "pkg-1.0-py3-none-any.whl"


@pytest.mark.parametrize(
    ("available", "expected"),
    [
        ([CP311, ABI3, PURE], CP311),
        ([PURE, ABI3, CP311], CP311),
        ([ABI3, PURE], ABI3),
        ([PURE, ABI3], ABI3),
        ([PURE], PURE),
        (["pkg-1.0-py2.py3-none-any.whl"], "pkg-1.0-py2.py3-none-any.whl"),
    ],
)
def test_cpython_abi_over_abi3_over_pure(available, expected):
    assert choose(available, "linux_x86_64") == expected


def test_other_python_version_rejected():
    with pytest.raises(NoWheelError):
        choose(["pkg-1.0-cp312-cp312-manylinux_2_17_x86_64.whl"], "linux_x86_64")
    assert choose(["pkg-1.0-cp312-cp312-manylinux_2_17_x86_64.whl"], "linux_x86_64", python="3.12").startswith(
        "pkg-1.0-cp312"
    )


def test_no_wheel_message_lists_available_files():
    names = ["pkg-1.0-cp311-cp311-win_amd64.whl", "pkg-1.0-cp311-cp311-macosx_14_0_arm64.whl"]
    with pytest.raises(NoWheelError) as error:
        choose(names, "linux_aarch64", DeploymentTarget.parse("glibc@2.31", "14.0"))
    message = str(error.value)
    assert message.startswith("no wheel of pkg fits linux_aarch64 (CPython 3.11, glibc 2.31, macOS 14.0)")
    assert message.endswith("available: " + ", ".join(sorted(names)))


def test_no_wheel_message_says_source_only():
    with pytest.raises(NoWheelError) as error:
        choose_wheel("sgmllib3k", [], platform("linux_x86_64"), "3.11", DEFAULT)
    assert "no wheel of sgmllib3k" in str(error.value)
    assert "none (source distribution only)" in str(error.value)


def test_invalid_wheel_file_name():
    with pytest.raises(NoWheelError) as error:
        choose(["pkg-1.0.tar.gz"], "linux_x86_64")
    assert "'pkg-1.0.tar.gz' is not a valid wheel file name" in str(error.value)
