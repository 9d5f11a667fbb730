"""A layer's files: its wheels' installed trees plus the files that chain it to its lower layers; a runtime layer's
from its python-build-standalone archive, publishing what the layers above it need.

`layer_files` names the files without writing any: the wheels' files by their paths in the wheels' trees (each wheel
was extracted once, by its own install action), the runtime's and the generated ones by their content. The pack verb
writes them into the layer's archive; the compose verb (`compose`) into a directory, the wheels' files as hard links.
Relative symlinks inside a tree stay symlinks, and two inputs that would write different content to one path are an
error.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from installer.records import parse_record_file

from stacktool.archive import Member, tree_members, write_members
from stacktool.contract import (
    LAYER_RECORD,
    RECORD_VERSION,
    ComposeConfig,
    LayerRecord,
    Package,
    RuntimeRecord,
    RuntimeSource,
    VenvLinks,
    Wheel,
    read_json,
    to_json,
)
from stacktool.digest import sha256_of
from stacktool.errors import UserError
from stacktool.install import runtime_members
from stacktool.layout import Layout
from stacktool.link import (
    BASE_PYTHON_LINK,
    DYNLIB_DIR,
    INJECTED,
    LIBRARY_PATH_FILE,
    VENVSTACKS_LAYER_CONFIG,
    layers_path_files,
    python_wrapper,
    shared_libraries,
    venvstacks_layer_config,
    windows_venv_launchers,
)
from stacktool.module_hash import module_hash
from stacktool.platforms import Platform, platform
from stacktool.staging import unstaged


class ComposeError(UserError):
    """Inputs that do not fit together into one layer; the message names them."""


@dataclass
class Composer:
    """The layer's files by path (what each input adds, never written here), remembering which input added each path
    (for conflict messages)."""

    files: dict[str, Member] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)

    def add_tree(self, tree: Path, owner: str) -> None:
        for relative, member in sorted(tree_members(tree).items()):
            if member.kind != "dir":
                self.add_file(relative, cast(Path, member.path), owner)

    def adopt(self, members: dict[str, Member], owner: str) -> None:
        """Takes `members` (a runtime's files, in memory) as the layer's, added by `owner`."""
        self.files.update(members)
        for relative, member in members.items():
            if member.kind != "dir":
                self.owners[relative] = owner

    def add_file(self, relative: str, source: Path, owner: str) -> None:
        real = unstaged(source)
        if real.is_symlink():  # a relative link of the tree itself
            self._add(relative, Member("symlink", target=os.readlink(real)), owner)
        elif not (relative in self.owners and self._holds(relative, real)):
            self._add(relative, Member("file", path=real), owner)
        # else: e.g. a namespace package's identical __init__.py in two wheels

    def add_bytes(self, relative: str, data: bytes, owner: str) -> None:
        self._add(relative, Member("file", data=data), owner)

    def add_symlink(self, relative: str, target: str, owner: str) -> None:
        self._add(relative, Member("symlink", target=target), owner)

    def _holds(self, relative: str, source: Path) -> bool:
        """Whether the layer's file `relative` has the content of `source`."""
        member = self.files[relative]
        return member.kind == "file" and member.content() == source.read_bytes()

    def _add(self, relative: str, member: Member, owner: str) -> None:
        """Adds `member` at `relative` as `owner`'s; an error when another input added that path."""
        if relative in self.owners:
            raise ComposeError(f"{owner} and {self.owners[relative]} both install {relative}")
        self.owners[relative] = owner
        self.files[relative] = member


def import_names(tree: Path, layout: Layout) -> tuple[str, ...]:
    """Top-level modules and packages a wheel's tree provides (from its RECORD), for import checks."""
    site = tree / layout.site_packages
    names: set[str] = set()
    for record in site.glob("*.dist-info/RECORD"):
        for path, _, _ in parse_record_file(record.read_text(encoding="utf-8").splitlines()):
            first, _, rest = path.partition("/")
            if rest:  # a directory: a package when its name is an identifier (not `x.libs`, `x.dist-info`)
                name = first
            elif first.endswith((".py", ".so", ".pyd")):  # a module, possibly an extension `x.cpython-311-....so`
                name = first.split(".", 1)[0]
            else:
                continue
            if name.isidentifier() and name != "__pycache__" and (site / first).exists():
                names.add(name)
    return tuple(sorted(names))


def _venv_files(
    runtime: dict[str, Member] | None, layout: Layout, target: Platform, venv_files: Path | None, archive: str
) -> dict[str, str]:
    """Writes into `venv_files` (None: nowhere) the files every virtual environment over the runtime whose files
    are `runtime` (needed for Windows only) starts with; returns the symlinks it has too (a tree artifact may lose
    its symlinks, a record cannot)."""
    if layout.windows:  # the runtime's venv launchers start its python.exe as the venv's python
        assert runtime is not None, "a Windows runtime's venv files come from the runtime's files"
        for relative, candidates in windows_venv_launchers().items():
            found = next((runtime[c] for c in candidates if runtime.get(c, Member("dir")).kind == "file"), None)
            if found is None:
                raise ComposeError(
                    f"{archive} has no Windows venv launcher ({' or '.join(candidates)}); is it a "
                    "python-build-standalone install_only archive for Windows?"
                )
            if venv_files is not None:
                (venv_files / relative).parent.mkdir(parents=True, exist_ok=True)
                (venv_files / relative).write_bytes(found.content())
        return {}
    if venv_files is not None:
        wrapper = venv_files / "bin" / "python"
        wrapper.parent.mkdir(parents=True)
        wrapper.write_text(python_wrapper(target.library_path_variable), encoding="utf-8")
    return {f"bin/{alias}": "python" for alias in ("python3", f"python{layout.python}")}


def _runtime_source(config: ComposeConfig, archive: Path) -> RuntimeSource:
    """Where the runtime archive came from: the runtime repository's record, or (for an archive the user gave as a
    label) its name, label and sha256, and the exact version asked for or named by the file."""
    if config.runtime_source is not None:
        return read_json(RuntimeSource, Path(config.runtime_source))
    named = re.match(r"cpython-(\d+\.\d+\.\d+)", archive.name)
    version = config.python_version or (named[1] if named else "")
    if not version:
        raise ComposeError(
            f"{config.env_name}: cannot tell which CPython {config.python}.Z {archive.name} ({config.runtime_origin}) "
            f'holds; give the layer the exact version, e.g. python = "{config.python}.0"'
        )
    if not version.startswith(config.python + "."):
        raise ComposeError(
            f"{config.env_name}: {archive.name} ({config.runtime_origin}) holds CPython {version}, but the layer "
            f"asks for {config.python}; give it an archive of CPython {config.python}"
        )
    return RuntimeSource(
        file=archive.name, origin=str(config.runtime_origin), python_version=version, sha256=sha256_of(archive)
    )


def _runtime_archive(config: ComposeConfig) -> Path:
    if config.runtime_archive is None or (config.runtime_source is None and config.runtime_origin is None):
        raise ComposeError(f"{config.env_name}: a runtime layer needs runtime_archive and runtime_source (or origin)")
    return Path(config.runtime_archive)


def _record(
    config: ComposeConfig, layout: Layout, runtime: dict[str, Member] | None, venv_files: Path | None
) -> RuntimeRecord:
    """The runtime layer's record, its venv files written into `venv_files` unless that is None; `runtime`: the
    runtime's files, where a Windows runtime's venv launchers come from (None for the others)."""
    archive = _runtime_archive(config)
    venv_symlinks = _venv_files(runtime, layout, platform(config.platform), venv_files, archive.name)
    return RuntimeRecord(layout.runtime_python, _runtime_source(config, archive), venv_symlinks)


def runtime_record(config: ComposeConfig, venv_files: Path) -> RuntimeRecord:
    """What a runtime layer publishes for the layers above it: its record, its venv files written into `venv_files`.

    Its own action, beside the runtime's Pack, so that the layers above wait for this, not for the runtime layer to
    be packed. It reads nothing of the archive for Linux and macOS (their venv files are generated; Pack checks the
    archive), and only for Windows the archive, in memory, for the runtime's venv launchers."""
    if config.kind != "runtime":
        raise ComposeError(f"{config.env_name}: only a runtime layer publishes a runtime record")
    layout = Layout(config.python, platform(config.platform).is_windows)
    runtime = runtime_members(_runtime_archive(config), layout) if layout.windows else None
    return _record(config, layout, runtime, venv_files)


def _chain(config: ComposeConfig, layout: Layout, composer: Composer) -> RuntimeRecord:
    """The files that make a framework or application layer a virtual environment over its lower layers."""
    if config.runtime_record is None or config.venv_files is None:
        raise ComposeError(f"{config.env_name}: a layer over a runtime needs runtime_record and venv_files")
    runtime = read_json(RuntimeRecord, Path(config.runtime_record))
    generated = f"rules_venvstacks ({config.env_name})"
    composer.add_tree(Path(config.venv_files), f"venv files of runtime layer {config.runtime}")
    for relative, target in sorted(runtime.venv_symlinks.items()):
        composer.add_symlink(relative, target, generated)
    for relative, data in layers_path_files(layout, list(config.lower)).items():
        composer.add_bytes(relative, data, generated)
    for name, path in shared_libraries(composer.files, layout, list(config.dynlib_exclude)).items():
        composer.add_symlink(f"{DYNLIB_DIR}/{name}", os.path.relpath(path, DYNLIB_DIR), generated)
    return runtime


def _package(wheel: Wheel, layout: Layout) -> Package:
    return Package(wheel.name, wheel.version, wheel.filename, wheel.sha256, import_names(Path(wheel.tree), layout))


def compose(config: ComposeConfig, out: Path) -> RuntimeRecord:
    """Writes the layer described by `config` into the empty directory `out` (the wheels' files as hard links);
    returns the runtime's record (for a runtime layer, the record `runtime_record` publishes)."""
    runtime, files = layer_files(config)
    write_members(files, out)
    return runtime


def layer_files(config: ComposeConfig) -> tuple[RuntimeRecord, dict[str, Member]]:
    """The files of the layer described by `config`, by path in the layer, and the runtime's record. Nothing is
    written: the wheels' files are named by their paths in the wheels' trees, a runtime's files and the generated
    ones are held in memory; `compose` writes them into a directory, the pack verb into the layer's archive."""
    layout = Layout(config.python, platform(config.platform).is_windows)
    composer = Composer()
    runtime = None
    if config.kind == "runtime":
        files = runtime_members(_runtime_archive(config), layout)
        runtime = _record(config, layout, files, None)
        composer.adopt(files, f"runtime archive of {config.env_name}")
    for wheel in config.wheels:
        composer.add_tree(Path(wheel.tree), wheel.filename)
    for module in config.modules:
        composer.add_file(f"{layout.site_packages}/{module.dest}", Path(module.src), module.src)
    if runtime is None:
        runtime = _chain(config, layout, composer)
    posix_venv = config.kind != "runtime" and not layout.windows
    site = layout.site_packages
    record = LayerRecord(
        record_version=RECORD_VERSION,
        env_name=config.env_name,
        install_target=config.install_target,
        kind=config.kind,
        platform=config.platform,
        python=config.python,
        runtime=config.runtime,
        runtime_interpreter=runtime.interpreter,
        runtime_source=runtime.source,
        lower=config.lower,
        launch_module=module_hash(composer.files, site, config.launch_module) if config.launch_module else None,
        support_modules=tuple(module_hash(composer.files, site, name) for name in config.support_modules),
        interpreter=layout.runtime_python if config.kind == "runtime" else layout.layer_python,
        site_packages=layout.site_packages,
        dynlib_dir=DYNLIB_DIR,
        venv_links=VenvLinks(BASE_PYTHON_LINK, LIBRARY_PATH_FILE) if posix_venv else None,
        packages=tuple(_package(wheel, layout) for wheel in config.wheels),
    )
    generated = f"rules_venvstacks ({config.env_name})"
    composer.add_bytes(LAYER_RECORD, to_json(record).encode(), generated)
    composer.add_bytes(VENVSTACKS_LAYER_CONFIG, venvstacks_layer_config(record, layout), generated)
    composer.add_bytes("postinstall.py", (INJECTED / "postinstall.py").read_bytes(), generated)
    return runtime, composer.files
