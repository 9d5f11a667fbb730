"""Package indexes at lock time: the per-layer uv project (dependencies, which index each package comes from), and
the index each locked wheel came from.

Where uv reaches each index on this machine (a mirror from VENVSTACKS_INDEX_MIRRORS, a local directory, or its URL)
is worked out once, by the module extension, and handed over in the stack spec. A lock records wheels by index
*name*: a wheel from a local directory or a mirror is recorded by its file name only, so that no path of the
machine that locked it ends up in the lock (the module extension finds it again through the index's location on
the machine that fetches it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from stacktool.contract import LayerSpec, PackageIndex

DEFAULT_INDEX = "pypi"  # the name locks give PyPI when no declared index is the default


@dataclass(frozen=True)
class IndexSet:
    """The package indexes MODULE.bazel declares, in declaration order."""

    declared: Mapping[str, PackageIndex]

    @property
    def default_name(self) -> str:
        return next((name for name, index in self.declared.items() if index.default), DEFAULT_INDEX)

    def wheel_index(self, layer: LayerSpec, package: str, url: str) -> str:
        """The name of the index a locked wheel came from."""
        if package in layer.package_indexes:
            return layer.package_indexes[package]
        for name, index in self.declared.items():
            if index.flat and url.startswith(index.location.rstrip("/") + "/"):
                return name
        return self.default_name

    @staticmethod
    def recorded_url(url: str) -> str:
        """The URL a lock may record: none for a wheel of a local directory or a mirror (found by index and name)."""
        return "" if url.startswith("file://") else url

    def project(self, layer: LayerSpec, requirements: tuple[str, ...]) -> str:
        """The uv project (pyproject.toml) that resolves the layer: its requirements, the indexes in the order uv
        should try them (the layer's priority indexes first), and which index each of its package_indexes uses."""
        order = [*layer.priority_indexes, *(n for n in self.declared if n not in layer.priority_indexes)]
        lines = [
            "[project]",
            'name = "venvstacks-layer"',
            'version = "0"',
            f"requires-python = {json.dumps(f'=={layer.python}.*')}",
            f"dependencies = {json.dumps(list(requirements))}",
            "",
            "[tool.uv.sources]",
            *(f"{json.dumps(d)} = {{ index = {json.dumps(i)} }}" for d, i in sorted(layer.package_indexes.items())),
        ]
        for name in order:
            index = self.declared[name]
            explicit = index.explicit and name not in layer.priority_indexes
            lines += ["", "[[tool.uv.index]]", f"name = {json.dumps(name)}", f"url = {json.dumps(index.location)}"]
            lines += [f"explicit = {str(explicit).lower()}", f"default = {str(index.default).lower()}"]
            lines += ['format = "flat"'] if index.flat else []
        return "\n".join(lines) + "\n"
