"""Tests for stacktool.platforms: names for uv, wheel tags, markers and deployment targets."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest
from packaging.markers import Marker, default_environment
from packaging.tags import Tag
from stacktool.platforms import PLATFORMS, DeploymentTarget, PlatformError, platform

DEFAULT = DeploymentTarget.parse("glibc@2.28", "13.0")
GLIBC_235 = DeploymentTarget.parse("glibc@2.35", "14.0")

UV_PLATFORM = {
    "linux_x86_64": "x86_64-manylinux_2_28",
    "linux_aarch64": "aarch64-manylinux_2_28",
    "macosx_arm64": "aarch64-apple-darwin",
    "macosx_x86_64": "x86_64-apple-darwin",
    "win_amd64": "x86_64-pc-windows-msvc",
    "win_arm64": "aarch64-pc-windows-msvc",
}
SYS_PLATFORM_MACHINE = {
    "linux_x86_64": ("linux", "x86_64"),
    "linux_aarch64": ("linux", "aarch64"),
    "macosx_arm64": ("darwin", "arm64"),
    "macosx_x86_64": ("darwin", "x86_64"),
    "win_amd64": ("win32", "AMD64"),
    "win_arm64": ("win32", "ARM64"),
}


def test_six_platforms_are_supported():
    assert sorted(PLATFORMS) == sorted(UV_PLATFORM)


@pytest.mark.parametrize("name", sorted(UV_PLATFORM))
def test_uv_python_platform_default_target(name):
    assert platform(name).uv_python_platform(DEFAULT) == UV_PLATFORM[name]


def test_uv_python_platform_follows_linux_target():
    assert platform("linux_x86_64").uv_python_platform(GLIBC_235) == "x86_64-manylinux_2_35"
    assert platform("linux_aarch64").uv_python_platform(DeploymentTarget.parse("glibc@2.17", "13.0")) == (
        "aarch64-manylinux_2_17"
    )
    # macOS and Windows names do not carry the target (uv reads MACOSX_DEPLOYMENT_TARGET).
    assert platform("macosx_arm64").uv_python_platform(GLIBC_235) == "aarch64-apple-darwin"
    assert platform("win_amd64").uv_python_platform(GLIBC_235) == "x86_64-pc-windows-msvc"


def test_uv_accepts_every_platform_string_and_resolves_markers_for_it(uv, tmp_path):
    """Real uv: each --python-platform string is accepted and means the OS and CPU we think it does."""
    (tmp_path / "requirements.in").write_text(
        "six==1.16.0; sys_platform == 'win32'\n"
        "packaging==24.2; platform_machine == 'aarch64' or platform_machine == 'arm64' or platform_machine == 'ARM64'\n"
        "wheel==0.45.1; sys_platform == 'darwin'\n",
        encoding="utf-8",
    )
    for name in sorted(PLATFORMS):
        out = tmp_path / f"pylock.{name}.toml"
        cmd = [
            str(uv), "pip", "compile", "requirements.in", "-o", out.name, "--python-version", "3.11",
            "--python", sys.executable, "--python-platform", platform(name).uv_python_platform(DEFAULT),
            "--no-build", "--no-header", "--quiet", "--no-config", "--no-python-downloads",
        ]  # fmt: skip
        result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
        got = {p["name"] for p in tomllib.loads(out.read_text(encoding="utf-8")).get("packages", [])}
        sys_platform, machine = SYS_PLATFORM_MACHINE[name]
        expected = {"six"} if sys_platform == "win32" else set()
        expected |= {"packaging"} if machine in ("aarch64", "arm64", "ARM64") else set()
        expected |= {"wheel"} if sys_platform == "darwin" else set()
        assert got == expected, name


# --------------------------------------------------------------------------------------------------
# DeploymentTarget.parse


@pytest.mark.parametrize(
    ("linux_target", "macosx_target", "glibc", "macos"),
    [
        ("glibc@2.35", "14.0", (2, 35), (14, 0)),
        ("glibc@2.17", "15", (2, 17), (15, 0)),
        ("glibc@2.5", "11.3", (2, 5), (11, 3)),
    ],
)
def test_parse_good(linux_target, macosx_target, glibc, macos):
    target = DeploymentTarget.parse(linux_target, macosx_target)
    assert (target.glibc, target.macos) == (glibc, macos)
    assert target.macos_version == f"{macos[0]}.{macos[1]}"


@pytest.mark.parametrize(
    "bad", ["", "glibc", "glibc@2", "musl@1.2", "glibc@2.35.1", "2.35", "glibc@", "glibc@x.y", "manylinux_2_28"]
)
def test_parse_bad_linux_target(bad):
    with pytest.raises(PlatformError) as error:
        DeploymentTarget.parse(bad, "14.0")
    message = str(error.value)
    assert repr(bad) in message
    assert "'glibc@X.Y'" in message


@pytest.mark.parametrize("bad", ["", "14.0.1", "fourteen", "v14", "14.", ".5", "macosx_14_0"])
def test_parse_bad_macosx_target(bad):
    with pytest.raises(PlatformError) as error:
        DeploymentTarget.parse("glibc@2.28", bad)
    assert f"macosx_target {bad!r} is not a macOS version such as '14.0'" == str(error.value)


def test_unknown_platform_lists_the_supported_ones():
    with pytest.raises(PlatformError) as error:
        platform("linux_riscv64")
    message = str(error.value)
    assert "'linux_riscv64'" in message
    assert all(name in message for name in PLATFORMS)


# --------------------------------------------------------------------------------------------------
# Platform tags


def test_manylinux_tags_newest_first_with_legacy_aliases_then_the_plain_linux_tag():
    tags = platform("linux_x86_64").platform_tags(DEFAULT)
    assert tags.pop() == "linux_x86_64"  # locally built wheels: accepted, last
    expected = []
    for minor in range(28, 4, -1):
        expected.append(f"manylinux_2_{minor}_x86_64")
        expected += {17: ["manylinux2014_x86_64"], 12: ["manylinux2010_x86_64"], 5: ["manylinux1_x86_64"]}.get(
            minor, []
        )
    assert tags == expected
    # each legacy alias right after the PEP 600 tag it stands for
    assert tags.index("manylinux2014_x86_64") == tags.index("manylinux_2_17_x86_64") + 1
    assert tags.index("manylinux2010_x86_64") == tags.index("manylinux_2_12_x86_64") + 1
    assert tags[-2:] == ["manylinux_2_5_x86_64", "manylinux1_x86_64"]


def test_manylinux_tags_stop_at_linux_target():
    tags = platform("linux_aarch64").platform_tags(GLIBC_235)
    assert tags[0] == "manylinux_2_35_aarch64"
    assert "manylinux_2_36_aarch64" not in tags
    assert all(tag.endswith("_aarch64") for tag in tags)
    old = platform("linux_x86_64").platform_tags(DeploymentTarget.parse("glibc@2.17", "13.0"))
    assert old[:2] == ["manylinux_2_17_x86_64", "manylinux2014_x86_64"]
    assert "manylinux_2_18_x86_64" not in old


def test_macos_tags_follow_macosx_target():
    arm15 = platform("macosx_arm64").platform_tags(DeploymentTarget.parse("glibc@2.28", "15.0"))
    assert arm15[0] == "macosx_15_0_arm64"
    assert arm15.index("macosx_15_0_arm64") < arm15.index("macosx_14_0_arm64") < arm15.index("macosx_11_0_arm64")
    assert not any(tag.endswith("_x86_64") for tag in arm15)
    arm14 = platform("macosx_arm64").platform_tags(DeploymentTarget.parse("glibc@2.28", "14.0"))
    assert "macosx_15_0_arm64" not in arm14
    assert arm14[0] == "macosx_14_0_arm64"
    intel = platform("macosx_x86_64").platform_tags(DEFAULT)
    assert intel[0] == "macosx_13_0_x86_64"
    assert "macosx_10_9_x86_64" in intel
    assert not any(tag.endswith("_arm64") for tag in intel)


def test_windows_tags():
    assert platform("win_amd64").platform_tags(DEFAULT) == ["win_amd64"]
    assert platform("win_arm64").platform_tags(DEFAULT) == ["win_arm64"]


def test_wheel_tags_prefer_cpython_abi_then_abi3_then_pure():
    tags = platform("linux_x86_64").wheel_tags("3.11", DEFAULT)
    order = [
        Tag("cp311", "cp311", "manylinux_2_28_x86_64"),
        Tag("cp311", "cp311", "manylinux1_x86_64"),
        Tag("cp311", "abi3", "manylinux_2_28_x86_64"),
        Tag("cp38", "abi3", "manylinux_2_28_x86_64"),
        Tag("py3", "none", "manylinux_2_28_x86_64"),
        Tag("py3", "none", "any"),
    ]
    positions = [tags.index(tag) for tag in order]
    assert positions == sorted(positions)
    assert Tag("cp312", "cp312", "manylinux_2_28_x86_64") not in tags
    assert Tag("cp311", "cp311", "manylinux_2_29_x86_64") not in tags
    assert Tag("cp311", "cp311", "win_amd64") not in tags


# --------------------------------------------------------------------------------------------------
# Markers


@pytest.mark.parametrize("name", sorted(SYS_PLATFORM_MACHINE))
def test_marker_environment(name):
    env = platform(name).marker_environment("3.11")
    sys_platform, machine = SYS_PLATFORM_MACHINE[name]
    assert env["sys_platform"] == sys_platform
    assert env["platform_machine"] == machine
    assert env["os_name"] == ("nt" if sys_platform == "win32" else "posix")
    assert env["platform_system"] == {"linux": "Linux", "darwin": "Darwin", "win32": "Windows"}[sys_platform]
    assert Marker(f"sys_platform == '{sys_platform}' and platform_machine == '{machine}'").evaluate(env)
    assert Marker("python_version == '3.11' and python_full_version >= '3.11.0'").evaluate(env)
    assert not Marker("python_version >= '3.12'").evaluate(env)
    assert Marker("implementation_name == 'cpython' and platform_python_implementation == 'CPython'").evaluate(env)


def test_platform_marker_is_true_on_exactly_its_platform():
    for name, target in PLATFORMS.items():
        marker = Marker(target.marker)
        truth = {other: marker.evaluate(PLATFORMS[other].marker_environment("3.11")) for other in PLATFORMS}
        assert truth == {other: other == name for other in PLATFORMS}, name


def test_marker_environment_on_the_host_matches_the_real_one():
    """The emulated environment agrees with packaging's real one for the keys that matter here."""
    if sys.platform != "linux":
        pytest.skip("linux host only")
    real = default_environment()
    host = {"x86_64": "linux_x86_64", "aarch64": "linux_aarch64"}.get(real["platform_machine"])
    if host is None:
        pytest.skip(f"unsupported host machine {real['platform_machine']}")
    emulated = platform(host).marker_environment(real["python_version"])
    for key in ("sys_platform", "platform_machine", "os_name", "platform_system", "implementation_name",
                "platform_python_implementation", "python_version"):  # fmt: skip
        assert emulated[key] == real[key], key
