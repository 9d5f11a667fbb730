"""Everything that crosses the Starlark/Python boundary, as typed records (docs/architecture.md draws the flow).

Written by Starlark, read here:
- `StackSpec` / `LayerSpec`: what each layer asks for (rules/private/stack_lock.bzl, `_spec` in layer.bzl); the
  lock index records each spec so that Bazel can tell a stale lock.
- `ComposeConfig`, `PackConfig`: one layer's build for one platform (`_compose_config`, `_pack_config` in layer.bzl).
- `RuntimeSource`: where a runtime archive came from (rules/private/runtime_repo.bzl).
Written and read here:
- `RuntimeRecord` + the `venv_files` tree: what a runtime layer publishes for the layers above it.
- `LayerRecord`: a layer's own description, inside the layer (`LAYER_RECORD`); pack, postinstall.py and deploy read it.
The platform table is stacktool.platforms (held equal to platforms/platforms.bzl by tests/e2e/test_platform_parity.py).

Decoding is strict: a missing or unknown field, or a value of the wrong type, is an error naming the file, so the two
sides cannot drift apart silently.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from stacktool.errors import UserError
from stacktool.platforms import DeploymentTarget, Platform, PlatformError, platform

LAYER_RECORD = "share/venvstacks/layer.json"  # inside every layer
RECORD_VERSION = 2

T = TypeVar("T")


class ContractError(UserError):
    """A file of the Starlark/Python contract that does not have the expected shape."""


class SpecError(UserError):
    """A layer spec that cannot be locked; the message names the layer and the fix."""


def _decode(kind: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(kind)
    if dataclasses.is_dataclass(kind):
        return from_json(kind, value, where)  # type: ignore[arg-type]
    if origin in (types.UnionType, typing.Union):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        return _decode(next(o for o in options if o is not type(None)), value, where)
    if origin is tuple:
        if not isinstance(value, list):
            raise ContractError(f"{where}: expected a list, got {value!r}")
        item = typing.get_args(kind)[0]
        return tuple(_decode(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ContractError(f"{where}: expected an object, got {value!r}")
        item = typing.get_args(kind)[1]
        return {k: _decode(item, v, f"{where}.{k}") for k, v in value.items()}
    if kind is Any:
        return value
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ContractError(f"{where}: expected {kind.__name__}, got {value!r}")
    return value


def from_json(cls: type[T], data: Any, where: str) -> T:
    """`data` (decoded JSON) as the dataclass `cls`: exactly its fields, each of its declared type."""
    if not isinstance(data, dict):
        raise ContractError(f"{where}: expected an object for {cls.__name__}, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown, missing = sorted(set(data) - set(names)), [n for n in names if n not in data]
    if unknown or missing:
        raise ContractError(
            f"{where}: {cls.__name__} fields differ (missing: {', '.join(missing) or '-'}; unknown: "
            f"{', '.join(unknown) or '-'}); rules/ and python/ of rules_venvstacks come from different versions?"
        )
    return cls(**{name: _decode(hints[name], data[name], f"{where}.{name}") for name in names})


def read_json(cls: type[T], path: Path) -> T:
    """The record of type `cls` in the JSON file `path`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ContractError(f"{path}: no such file (expected a {cls.__name__})") from None
    return from_json(cls, json.loads(text), str(path))


def to_json(record: Any) -> str:
    """The record as sorted, indented JSON (tuples as lists): the bytes every writer of the contract produces."""
    return json.dumps(dataclasses.asdict(record), indent=1, sort_keys=True) + "\n"


@dataclass(frozen=True)
class LayerSpec:
    """One layer as declared in a BUILD file."""

    key: str  # "package:name" of the layer's Bazel target
    kind: str  # "runtime", "framework", "application" or "test" (a test-only layer over an application)
    env_name: str  # "cpython3_11", "framework-mlx", "app-mlx_app"; deployed as such, or as `<env_name>@<N>`
    python: str  # X.Y, e.g. "3.11"
    python_version: str  # runtime layers: the exact X.Y.Z asked for, or "" (the runtime table's release for X.Y)
    requirements: tuple[str, ...]
    requirements_files: tuple[str, ...]  # workspace-relative: requirements.in-style files, or pyproject.toml
    dependency_groups: tuple[str, ...]  # of the pyproject.toml files (PEP 735)
    package_indexes: dict[str, str]  # distribution -> index name, its own and those inherited from lower layers
    priority_indexes: tuple[str, ...]  # index names to try first (before the default index)
    lower: tuple[str, ...]  # keys of every lower layer, nearest first (frameworks in C3 order), the runtime last
    platforms: tuple[str, ...]
    pylock: str  # the name of its PEP 751 lock file, chosen by the layer rule
    linux_target: str
    macosx_target: str
    versioned: bool  # deployed as `<env_name>@<lock version>`

    @property
    def label(self) -> str:
        return "//" + self.key

    @property
    def inputs(self) -> dict[str, Any]:
        """The spec as Bazel wrote it; the lock index records it so that the layer rule can tell a stale lock."""
        return json.loads(to_json(self))  # type: ignore[no-any-return]

    def parsed_requirements(self, from_files: tuple[str, ...] = ()) -> list[Requirement]:
        """Its requirements, and those `from_files` (read from its requirements files), parsed."""
        parsed = []
        for text in self.requirements + from_files:
            try:
                parsed.append(Requirement(text))
            except InvalidRequirement as error:
                raise SpecError(
                    f"{self.label}: requirement {text!r} is not a valid PEP 508 requirement ({error}); "
                    "fix it in the layer's `requirements` (or its `requirements_files`)"
                ) from None
        return parsed

    def requirement_names(self) -> set[str]:
        return {canonicalize_name(r.name) for r in self.parsed_requirements()}

    def target(self) -> DeploymentTarget:
        try:
            return DeploymentTarget.parse(self.linux_target, self.macosx_target)
        except PlatformError as error:
            raise SpecError(f"{self.label}: {error}") from None

    def target_platforms(self) -> list[Platform]:
        try:
            return [platform(name) for name in self.platforms]
        except PlatformError as error:
            raise SpecError(f"{self.label}: {error}") from None


@dataclass(frozen=True)
class PackageIndex:
    """A package index MODULE.bazel declares (`venvstacks.index`)."""

    url: str  # as declared: a PEP 503 simple index URL, a flat directory URL, or a workspace-relative directory
    default: bool  # replaces PyPI as the default index
    explicit: bool  # only for the packages a layer's package_indexes sends to it
    flat: bool  # `location` is a flat directory of wheels (find-links style)
    location: str  # where uv reaches it on this machine: a mirror, a local directory's file:// URL, or `url`


@dataclass(frozen=True)
class StackSpec:
    """Every layer one lock target covers, lower layers before the layers that use them."""

    lock: str  # the stack_lock target's label
    exclude_newer: str  # uv ignores releases after this time ("" for no limit)
    indexes: dict[str, PackageIndex]  # the package indexes MODULE.bazel declares, in declaration order
    layers: tuple[LayerSpec, ...]

    def layer(self, key: str) -> LayerSpec:
        return next(layer for layer in self.layers if layer.key == key)

    @classmethod
    def load(cls, path: Path) -> StackSpec:
        """Reads the spec file and checks what Starlark cannot: unique deployed names, known lower layers."""
        stack = read_json(cls, path)
        if stack.exclude_newer:
            try:
                datetime.fromisoformat(stack.exclude_newer)
            except ValueError:
                raise SpecError(
                    f"{stack.lock}: exclude_newer {stack.exclude_newer!r} is not a date or an RFC 3339 time "
                    "(e.g. '2025-06-30' or '2025-06-30T12:00:00Z'; a date means midnight UTC); durations such as "
                    "'1 week' are refused, since a lock must not depend on when it is taken"
                ) from None
        seen: dict[str, str] = {}
        keys = {layer.key for layer in stack.layers}
        for layer in stack.layers:
            for name in (layer.env_name, layer.pylock):
                if name in seen:
                    raise SpecError(
                        f"{layer.label} and //{seen[name]} would both use the name {name!r}; rename one of them"
                    )
                seen[name] = layer.key
            for lower in layer.lower:
                if lower not in keys:
                    raise SpecError(f"{layer.label}: lower layer //{lower} is not part of {stack.lock}; add it there")
        return stack


@dataclass(frozen=True)
class Wheel:
    """A locked wheel of a layer, with the tree its install action made (empty where no tree is needed)."""

    name: str
    version: str
    filename: str
    sha256: str
    tree: str


@dataclass(frozen=True)
class Module:
    """A launch or support module file: where it goes below site-packages, and where Bazel staged it."""

    dest: str
    src: str


@dataclass(frozen=True)
class RuntimeSource:
    """runtime.json of a runtime repository: which python-build-standalone archive a runtime layer unpacks."""

    file: str
    origin: str  # the URL it was downloaded from, or "local"
    python_version: str  # X.Y.Z
    sha256: str


@dataclass(frozen=True)
class RuntimeRecord:
    """What a runtime layer publishes for the layers above it (with the `venv_files` tree beside it)."""

    interpreter: str  # the runtime's python, relative to the runtime layer
    source: RuntimeSource
    venv_symlinks: dict[str, str]  # links every venv over this runtime has (the files are in venv_files)


@dataclass(frozen=True)
class ComposeConfig:
    """One layer for one platform, as the pack and compose verbs build it (a runtime layer: runtime-record too)."""

    env_name: str
    install_target: str  # its deployed name: env_name, or env_name@<lock version> for a versioned layer
    kind: str
    platform: str
    python: str  # X.Y
    runtime: str  # install target of the runtime layer
    lower: tuple[str, ...]  # install targets of every lower layer, nearest first, the runtime last
    launch_module: str | None
    support_modules: tuple[str, ...]  # module names
    wheels: tuple[Wheel, ...]
    modules: tuple[Module, ...]
    dynlib_exclude: tuple[str, ...]
    runtime_archive: str | None  # runtime layers: the python-build-standalone archive
    runtime_source: str | None  # runtime layers: its RuntimeSource file; None for an archive the user gave
    runtime_origin: str | None  # runtime layers: the label of an archive the user gave
    python_version: str  # runtime layers: the exact X.Y.Z asked for, or ""
    runtime_record: str | None  # other layers: the RuntimeRecord of their runtime layer
    venv_files: str | None  # other layers: the runtime layer's venv_files tree


@dataclass(frozen=True)
class PackConfig:
    """What the pack verb needs beyond the layer's tree and its record: the layer's entry in the lock index."""

    archive_format: str
    label: str  # the layer's Bazel label
    lock_label: str
    pylock_sha256: str  # of the layer's pylock file when it was locked
    lock_version: int
    locked_at: str
    requirements_hash: str


@dataclass(frozen=True)
class Package:
    """A package a layer installs."""

    name: str
    version: str
    wheel: str
    sha256: str
    import_names: tuple[str, ...]  # its top-level modules, for the layer test's import check


@dataclass(frozen=True)
class ModuleHash:
    """A launch or support module of an application and its hash (venvstacks' `sha256:` / `sha256/` format)."""

    name: str
    hash: str


@dataclass(frozen=True)
class VenvLinks:
    """Files postinstall.py writes into a POSIX framework or application layer once its location is known."""

    base_python: str  # the link to the runtime's interpreter that bin/python runs
    library_path: str  # the file listing the real directories of lower layers' shared libraries


@dataclass(frozen=True)
class LayerRecord:
    """A layer's description inside the layer (`LAYER_RECORD`), written by compose."""

    record_version: int
    env_name: str
    install_target: str  # the layer's directory when deployed
    kind: str
    platform: str
    python: str  # X.Y
    runtime: str  # install target of the runtime layer (its own for a runtime)
    runtime_interpreter: str  # relative to the runtime layer
    runtime_source: RuntimeSource
    lower: tuple[str, ...]  # install targets of the layers below, nearest first, the runtime last
    launch_module: ModuleHash | None
    support_modules: tuple[ModuleHash, ...]
    interpreter: str  # the python to run this layer with, relative to the layer
    site_packages: str
    dynlib_dir: str  # links to this layer's shared libraries, for the layers above
    venv_links: VenvLinks | None
    packages: tuple[Package, ...]
