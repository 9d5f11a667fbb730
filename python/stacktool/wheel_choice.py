"""Choosing, for one target platform, the wheel of each locked package (packaging's tag logic)."""

from __future__ import annotations

from dataclasses import dataclass

from packaging.tags import Tag
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from stacktool.errors import UserError
from stacktool.platforms import DeploymentTarget, Platform


class NoWheelError(UserError):
    """No wheel of a package fits the target platform."""


@dataclass(frozen=True)
class WheelFile:
    """One wheel file of a locked package: where it is and what it must hash to."""

    filename: str
    url: str  # "" for a wheel of a local directory or a mirror: found by its index and file name
    sha256: str
    size: int | None = None
    index: str = ""  # the name of the package index it comes from

    def tags(self) -> frozenset[Tag]:
        try:
            return parse_wheel_filename(self.filename)[3]
        except InvalidWheelFilename as error:
            raise NoWheelError(f"{self.filename!r} is not a valid wheel file name ({error})") from None


def choose_wheel(
    package: str, wheels: list[WheelFile], platform: Platform, python: str, target: DeploymentTarget
) -> WheelFile:
    """The wheel the target would install: the one with the most preferred tag, as pip and uv rank them.

    With several compatible wheels (e.g. `macosx_14_0_arm64` and `macosx_15_0_arm64` under macosx_target 15.0)
    the most specific one wins.
    """
    rank = {tag: index for index, tag in enumerate(platform.wheel_tags(python, target))}
    best: tuple[int, WheelFile] | None = None
    for wheel in wheels:
        score = min((rank[tag] for tag in wheel.tags() if tag in rank), default=None)
        if score is not None and (best is None or score < best[0]):
            best = (score, wheel)
    if best is None:
        available = ", ".join(sorted(w.filename for w in wheels)) or "none (source distribution only)"
        raise NoWheelError(
            f"no wheel of {package} fits {platform.name} (CPython {python}, glibc "
            f"{target.glibc[0]}.{target.glibc[1]}, macOS {target.macos_version}); available: {available}"
        )
    return best[1]
