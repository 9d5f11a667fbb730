"""Target platforms: how each one is named to uv, to python-build-standalone and in wheel tags and markers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from packaging import tags

from stacktool.errors import UserError


class PlatformError(UserError):
    """A platform name or deployment target that rules_venvstacks does not support."""


@dataclass(frozen=True)
class Platform:
    """One target platform, by its venvstacks name (also the name of its Bazel `platform()`)."""

    name: str
    os: str  # "linux", "macos" or "windows"
    arch: str  # uname-style CPU name: "x86_64" or "aarch64"
    machine: str  # platform.machine() on that platform, as used in markers

    @property
    def is_windows(self) -> bool:
        return self.os == "windows"

    @property
    def sys_platform(self) -> str:
        return {"linux": "linux", "macos": "darwin", "windows": "win32"}[self.os]

    @property
    def library_path_variable(self) -> str:
        """The variable the dynamic loader reads extra library directories from (Linux and macOS)."""
        return "DYLD_LIBRARY_PATH" if self.os == "macos" else "LD_LIBRARY_PATH"

    @property
    def oci_architecture(self) -> str:
        """The CPU as OCI image configs and indexes name it (Go's GOARCH): `amd64` or `arm64`."""
        return {"x86_64": "amd64", "aarch64": "arm64"}[self.arch]

    @property
    def marker(self) -> str:
        """A PEP 508 marker that is true exactly on this platform."""
        return f"sys_platform == '{self.sys_platform}' and platform_machine == '{self.machine}'"

    def marker_environment(self, python: str) -> dict[str, str]:
        """The marker environment of CPython `python` (X.Y) on this platform, for evaluating lock markers."""
        return {
            "implementation_name": "cpython",
            "implementation_version": f"{python}.0",
            "os_name": "nt" if self.is_windows else "posix",
            "platform_machine": self.machine,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": {"linux": "Linux", "macos": "Darwin", "windows": "Windows"}[self.os],
            "platform_version": "",
            "python_full_version": f"{python}.0",
            "python_version": python,
            "sys_platform": self.sys_platform,
        }

    def uv_python_platform(self, target: DeploymentTarget) -> str:
        """The value of `uv pip compile --python-platform` for this platform and deployment target."""
        if self.os == "linux":
            return f"{self.arch}-manylinux_{target.glibc[0]}_{target.glibc[1]}"
        return {"macos": f"{self.arch}-apple-darwin", "windows": f"{self.arch}-pc-windows-msvc"}[self.os]

    def platform_tags(self, target: DeploymentTarget) -> list[str]:
        """Wheel platform tags this platform accepts, most specific first. On Linux that ends with the plain
        `linux_<arch>` tag of locally built wheels (as pip, uv and venvstacks accept them on their own machine): such
        a wheel promises nothing about glibc, so it comes last."""
        if self.os == "linux":
            return [*_manylinux_tags(self.arch, target.glibc), f"linux_{self.arch}"]
        if self.os == "macos":
            return list(tags.mac_platforms(target.macos, "arm64" if self.arch == "aarch64" else "x86_64"))
        return ["win_amd64" if self.arch == "x86_64" else "win_arm64"]

    def wheel_tags(self, python: str, target: DeploymentTarget) -> list[tags.Tag]:
        """Every wheel tag CPython `python` accepts here, most preferred first (as pip and uv order them)."""
        major, minor = (int(part) for part in python.split("."))
        platforms = self.platform_tags(target)
        return [
            *tags.cpython_tags((major, minor), platforms=platforms),
            *tags.compatible_tags((major, minor), interpreter=f"cp{major}{minor}", platforms=platforms),
        ]


@dataclass(frozen=True)
class DeploymentTarget:
    """The oldest OS a layer must run on: glibc for Linux (`linux_target`), macOS version (`macosx_target`).

    The defaults are the layer rules' (rules/private/layer.bzl): every spec Bazel writes carries both values.
    """

    glibc: tuple[int, int]
    macos: tuple[int, int]

    @classmethod
    def parse(cls, linux_target: str, macosx_target: str) -> DeploymentTarget:
        """From venvstacks' spellings: `glibc@2.35` and `14.0` (or `14`)."""
        glibc = re.fullmatch(r"glibc@(\d+)\.(\d+)", linux_target)
        if not glibc:
            raise PlatformError(f"linux_target {linux_target!r} is not of the form 'glibc@X.Y' (e.g. 'glibc@2.35')")
        macos = re.fullmatch(r"(\d+)(?:\.(\d+))?", macosx_target)
        if not macos:
            raise PlatformError(f"macosx_target {macosx_target!r} is not a macOS version such as '14.0'")
        return cls(glibc=(int(glibc[1]), int(glibc[2])), macos=(int(macos[1]), int(macos[2] or 0)))

    @property
    def macos_version(self) -> str:
        return f"{self.macos[0]}.{self.macos[1]}"


def _manylinux_tags(arch: str, glibc: tuple[int, int]) -> Iterator[str]:
    """manylinux tags for glibc <= `glibc`, newest first, with the legacy aliases where they apply."""
    legacy = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}
    major, newest = glibc
    for minor in range(newest, 4, -1):
        yield f"manylinux_{major}_{minor}_{arch}"
        if (major, minor) in legacy:
            yield f"{legacy[major, minor]}_{arch}"


PLATFORMS: dict[str, Platform] = {
    p.name: p
    for p in (
        Platform("linux_aarch64", "linux", "aarch64", "aarch64"),
        Platform("linux_x86_64", "linux", "x86_64", "x86_64"),
        Platform("macosx_arm64", "macos", "aarch64", "arm64"),
        Platform("macosx_x86_64", "macos", "x86_64", "x86_64"),
        Platform("win_amd64", "windows", "x86_64", "AMD64"),
        Platform("win_arm64", "windows", "aarch64", "ARM64"),
    )
}


def platform(name: str) -> Platform:
    try:
        return PLATFORMS[name]
    except KeyError:
        raise PlatformError(f"unknown platform {name!r}; supported: {', '.join(PLATFORMS)}") from None
