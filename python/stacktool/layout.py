"""Where things live inside a layer, for POSIX and Windows layers (one definition for every verb)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Layout:
    """The directory layout of a layer for CPython `python` (X.Y) on a POSIX or a Windows target."""

    python: str
    windows: bool

    @property
    def site_packages(self) -> str:
        return "Lib/site-packages" if self.windows else f"lib/python{self.python}/site-packages"

    @property
    def scripts(self) -> str:
        return "Scripts" if self.windows else "bin"

    def headers(self, distribution: str) -> str:
        return (
            f"Include/site/python{self.python}/{distribution}"
            if self.windows
            else (f"include/site/python{self.python}/{distribution}")
        )

    @property
    def runtime_python(self) -> str:
        """The interpreter inside a runtime layer (PBS install_only layout)."""
        return "python.exe" if self.windows else f"bin/python{self.python}"

    @property
    def layer_python(self) -> str:
        """The interpreter a user runs in a framework or application layer."""
        return "Scripts/python.exe" if self.windows else "bin/python"

    @property
    def up_from_site_packages(self) -> str:
        """The relative path from site-packages back to the layer's own directory."""
        return "../.." if self.windows else "../../.."
