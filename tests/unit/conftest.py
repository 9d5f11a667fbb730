"""Shared fixtures of the stacktool unit tests: real wheels from PyPI, real uv, the local runtime archive.

Nothing here is mocked: wheels are downloaded once per session with the dev env's pip, installed with
stacktool's own installer, and layers are composed and packed with the real verbs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from runtime_fixtures import make_fixture_runtime
from stacktool.compose import compose, runtime_record
from stacktool.contract import ComposeConfig, Module, PackConfig, RuntimeSource, Wheel, to_json
from stacktool.digest import sha256_of
from stacktool.install import install_wheel
from stacktool.layout import Layout
from stacktool.pack import pack_layer
from stacktool.sbom import sbom_path

RUNTIME_ARCHIVE = Path(
    "/root/.cache/rules_venvstacks/bazel-7.7.1-root/opt/venvstacks/runtimes/"
    "cpython-3.11.7+local-x86_64-unknown-linux-gnu-install_only.tar.gz"
)
RUNTIME_ENV = "cpython3_11"
POSIX = Layout("3.11", windows=False)
WINDOWS = Layout("3.11", windows=True)

# Small pure wheels, all py3 (or py2.py3) and `any`: the same file serves every platform.
WHEELS = {
    "six-1.16.0": "six==1.16.0",
    "six-1.17.0": "six==1.17.0",
    "wheel-0.45.1": "wheel==0.45.1",  # has a console script: `wheel`
}


@pytest.fixture(scope="session")
def uv() -> Path:
    """The dev env's uv binary (next to the interpreter running the tests)."""
    candidate = Path(sys.executable).parent / "uv"
    found = candidate if candidate.exists() else (Path(which) if (which := shutil.which("uv")) else None)
    if found is None:
        pytest.skip("uv is not installed in the dev env")
    return found


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real wheels from PyPI, by "name-version"."""
    out = tmp_path_factory.mktemp("wheels")
    batches: list[list[str]] = []  # pip resolves one download together: one version of a name per batch
    for requirement in WHEELS.values():
        name = requirement.split("==")[0]
        batch = next((b for b in batches if all(r.split("==")[0] != name for r in b)), None)
        batch.append(requirement) if batch is not None else batches.append([requirement])
    for batch in batches:
        cmd = [
            sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
            "--platform", "manylinux_2_28_x86_64", "--python-version", "3.11", "-d", str(out), *batch,
        ]  # fmt: skip
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        assert result.returncode == 0, f"pip download failed (is PyPI reachable?):\n{result.stderr}"
    found = {}
    for key in WHEELS:
        matches = sorted(out.glob(f"{key}-*.whl"))
        assert len(matches) == 1, f"expected one wheel for {key} in {sorted(p.name for p in out.iterdir())}"
        found[key] = matches[0]
    return found


MLX_WHEEL = "mlx-0.29.0-cp311-cp311-manylinux_2_35_x86_64.whl"


@pytest.fixture(scope="session")
def mlx_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MLX 0.29.0's real Linux wheel, whose RECORD lists its extension module's hash without `sha256=`."""
    out = tmp_path_factory.mktemp("mlx-wheel")
    cmd = [
        sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
        "--platform", "manylinux_2_35_x86_64", "--python-version", "3.11", "-d", str(out), "mlx==0.29.0",
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"pip download failed (is PyPI reachable?):\n{result.stderr}"
    assert (out / MLX_WHEEL).is_file(), f"expected {MLX_WHEEL} in {sorted(p.name for p in out.iterdir())}"
    return out / MLX_WHEEL


@pytest.fixture(scope="session")
def posix_trees(wheels: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each wheel installed into its own tree with the POSIX layer layout (as the install-wheel action does).

    Composed layers hard-link these files: tests must never write into a composed tree.
    """
    root = tmp_path_factory.mktemp("posix-trees")
    trees = {}
    for key, wheel in wheels.items():
        tree = root / key
        tree.mkdir()
        install_wheel(wheel, tree, POSIX, "x86_64")
        trees[key] = tree
    return trees


@pytest.fixture(scope="session")
def runtime_archive() -> Path:
    if not RUNTIME_ARCHIVE.exists():
        pytest.skip(f"local runtime archive {RUNTIME_ARCHIVE} is absent")
    return RUNTIME_ARCHIVE


@dataclass(frozen=True)
class Runtime:
    """A composed runtime layer: its tree and what it publishes for the layers above it."""

    tree: Path
    record: Path
    venv_files: Path


def wheel(wheel: Path, tree: Path) -> Wheel:
    """A ComposeConfig wheel for a downloaded wheel and its installed tree."""
    name, version = wheel.name.split("-")[:2]
    return Wheel(name=name, version=version, filename=wheel.name, sha256=sha256_of(wheel), tree=str(tree))


def runtime_source(archive: Path, path: Path) -> Path:
    """runtime.json as rules/private/runtime_repo.bzl writes it for a local archive."""
    version = archive.name.removeprefix("cpython-").split("+")[0]
    source = RuntimeSource(file=archive.name, origin="local", python_version=version, sha256=sha256_of(archive))
    path.write_text(to_json(source), encoding="utf-8")
    return path


def compose_config(
    env_name: str,
    kind: str,
    *,
    runtime: Runtime | None = None,
    runtime_archive: Path | None = None,
    runtime_source_file: Path | None = None,
    wheels: list[Wheel] | None = None,
    lower: list[str] | None = None,
    modules: list[Module] | None = None,
    launch_module: str | None = None,
    support_modules: list[str] | None = None,
    platform: str = "linux_x86_64",
    dynlib_exclude: list[str] | None = None,
    install_target: str | None = None,
) -> ComposeConfig:
    """The ComposeConfig rules/private/layer.bzl writes: a runtime layer's from `runtime_archive` (its RuntimeSource
    written to `runtime_source_file`, by default next to a test's own archive), any other's over the composed
    `runtime`; its install target is `env_name` unless given (a versioned layer's `env_name@N`)."""
    return ComposeConfig(
        env_name=env_name,
        install_target=install_target or env_name,
        kind=kind,
        platform=platform,
        python="3.11",
        runtime=(install_target or env_name) if kind == "runtime" else RUNTIME_ENV,
        lower=tuple(lower if lower is not None else ([] if kind == "runtime" else [RUNTIME_ENV])),
        launch_module=launch_module,
        support_modules=tuple(support_modules or []),
        wheels=tuple(wheels or []),
        modules=tuple(modules or []),
        dynlib_exclude=tuple(dynlib_exclude or []),
        runtime_archive=str(runtime_archive) if runtime_archive else None,
        runtime_source=str(runtime_source(runtime_archive, runtime_source_file or runtime_archive.with_suffix(".json")))
        if runtime_archive
        else None,
        runtime_origin=None,
        python_version="",
        runtime_record=str(runtime.record) if runtime else None,
        venv_files=str(runtime.venv_files) if runtime else None,
    )


def compose_runtime(
    archive: Path, work: Path, platform: str = "linux_x86_64", wheels: list[Wheel] | None = None
) -> Runtime:
    """Composes the runtime layer of `archive` as the compose action does (tree, record, venv files)."""
    runtime = Runtime(work / RUNTIME_ENV, work / "runtime_record.json", work / "venv_files")
    runtime.tree.mkdir(parents=True)
    runtime.venv_files.mkdir()
    config = compose_config(
        RUNTIME_ENV, "runtime", runtime_archive=archive, runtime_source_file=work / "runtime.json", platform=platform,
        wheels=wheels,
    )  # fmt: skip
    compose(config, runtime.tree)
    runtime.record.write_text(to_json(runtime_record(config, runtime.venv_files)), encoding="utf-8")
    return runtime


def pack_config(pylock: Path, env_name: str, fmt: str = "tar.zst") -> PackConfig:
    """The PackConfig rules/private/layer.bzl writes."""
    return PackConfig(
        archive_format=fmt,
        label=f"//stacks:{env_name}",
        lock_label="//stacks:lock",
        pylock_sha256=sha256_of(pylock),
        lock_version=1,
        locked_at="2026-11-30T12:00:00Z",
        requirements_hash="sha256:" + "0" * 64,
    )


def compose_tree(config: ComposeConfig, work: Path) -> Path:
    """The layer `config` describes, composed into `work/<install_target>`."""
    tree = work / config.install_target
    tree.mkdir(parents=True)
    compose(config, tree)
    return tree


def pack_tree(tree: Path, out: Path, env_name: str, **changes: Any) -> Path:
    """Packs a composed `tree` into `out` with the PackConfig rules/private/layer.bzl writes, `changes` (PackConfig
    fields) applied; returns the metadata file."""
    out.mkdir(parents=True, exist_ok=True)
    pylock = out / f"pylock.{env_name}.toml"
    pylock.write_text(f"# {env_name}\n", encoding="utf-8")
    config = dataclasses.replace(pack_config(pylock, env_name), **changes)
    metadata = out / f"{env_name}-linux_x86_64.json"
    archive = out / f"{env_name}-linux_x86_64.{config.archive_format}"
    pack_layer(tree, archive, metadata, pylock, config, sbom_path(metadata))
    return metadata


def tree_files(tree: Path, *, links: bool = False) -> dict[str, tuple[int, str]]:
    """Regular files below `tree` (and, with `links`, symlinks, never followed): relative path -> (size, sha256 of
    the content; for a symlink 0 and the sha256 of its target)."""
    found = {}
    for root, dirs, names in os.walk(tree):
        for name in names + [d for d in dirs if (Path(root) / d).is_symlink()]:
            path = Path(root) / name
            relative = path.relative_to(tree).as_posix()
            if stat.S_ISREG(path.lstat().st_mode):
                found[relative] = (path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest())
            elif links and path.is_symlink():
                found[relative] = (0, hashlib.sha256(os.readlink(path).encode()).hexdigest())
    return found


def file_module_hash(path: Path) -> str:
    """venvstacks' hash of a module file, computed here by hand: sha256 of its name and `sha256:<content hash>`."""
    content = hashlib.sha256(path.read_bytes()).hexdigest()
    return "sha256:" + hashlib.sha256(path.name.encode() + b"sha256:" + content.encode()).hexdigest()


def package_module_hash(path: Path) -> str:
    """venvstacks' hash of a package directory, computed here by hand (recursion, not os.walk): each directory's
    name, then each of its files (sorted) as name + `sha256:<content hash>`, then its subdirectories (sorted)."""

    def feed(directory: Path) -> bytes:
        entries = sorted(directory.iterdir(), key=lambda entry: entry.name)
        data = directory.name.encode()
        for file in (entry for entry in entries if entry.is_file()):
            data += file.name.encode() + b"sha256:" + hashlib.sha256(file.read_bytes()).hexdigest().encode()
        for subdirectory in (entry for entry in entries if entry.is_dir()):
            data += feed(subdirectory)
        return data

    return "sha256/" + hashlib.sha256(feed(path)).hexdigest()


def build_and_pack(config: ComposeConfig, work: Path, publish: Path) -> tuple[Path, Runtime | None]:
    """compose + pack one layer; returns its metadata file in `publish`, and a runtime layer's Runtime."""
    tree = work / config.env_name
    tree.mkdir(parents=True)
    runtime = None
    if config.kind == "runtime":
        runtime = Runtime(tree, work / "runtime_record.json", work / "venv_files")
        runtime.venv_files.mkdir()
        runtime.record.write_text(to_json(runtime_record(config, runtime.venv_files)), encoding="utf-8")
    compose(config, tree)
    pylock = work / f"pylock.{config.env_name}.toml"
    pylock.write_text(f"# lock of {config.env_name}\n", encoding="utf-8")
    metadata = publish / f"{config.env_name}-linux_x86_64.json"
    archive = publish / f"{config.env_name}-linux_x86_64.tar.zst"
    packing = pack_config(pylock, config.env_name)
    pack_layer(tree, archive, metadata, pylock, packing, sbom=sbom_path(metadata))
    return metadata, runtime


LAUNCH_MODULE = """\
import sys

import six

print("hello from", sys.prefix)
print("six", six.__version__, "from", six.__file__)
print("args", sys.argv[1:])
"""


@pytest.fixture(scope="session")
def published_runtime(runtime_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Runtime]:
    """The runtime layer of the local runtime archive, published: its metadata file and the composed Runtime."""
    work = tmp_path_factory.mktemp("runtime-build")
    publish = tmp_path_factory.mktemp("published")
    metadata, runtime = build_and_pack(
        compose_config(
            RUNTIME_ENV, "runtime", runtime_archive=runtime_archive, runtime_source_file=work / "runtime.json"
        ),
        work,
        publish,
    )
    assert runtime is not None
    return metadata, runtime


@pytest.fixture(scope="session")
def published_stack(
    published_runtime: tuple[Path, Runtime],
    wheels: dict[str, Path],
    posix_trees: dict[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> list[Path]:
    """A published three-layer stack (runtime, framework with six, application with a launch module).

    Returns the metadata files, lowest layer first; the archives sit next to them.
    """
    runtime_metadata, runtime = published_runtime
    work = tmp_path_factory.mktemp("stack-build")
    launch = work / "src" / "hello_app.py"
    launch.parent.mkdir()
    launch.write_text(LAUNCH_MODULE, encoding="utf-8")
    six = wheel(wheels["six-1.16.0"], posix_trees["six-1.16.0"])
    framework = compose_config("framework-sci", "framework", runtime=runtime, wheels=[six])
    app = compose_config(
        "app-hello",
        "application",
        runtime=runtime,
        lower=["framework-sci", RUNTIME_ENV],
        modules=[Module("hello_app.py", str(launch))],
        launch_module="hello_app",
    )
    publish = runtime_metadata.parent
    return [runtime_metadata, *(build_and_pack(cfg, work, publish)[0] for cfg in (framework, app))]


@pytest.fixture(scope="session")
def fixture_runtime(tmp_path_factory: pytest.TempPathFactory) -> Runtime:
    """A runtime layer composed from a layout-faithful fixture archive (tests/e2e/runtime_fixtures.py): enough to
    compose and pack layers over it on any machine, not to run them."""
    work = tmp_path_factory.mktemp("fixture-runtime")
    return compose_runtime(make_fixture_runtime(work, "linux_x86_64"), work / "layer")


class Kit:
    """The helpers above, for test modules (importing conftest by name is ambiguous with tests/e2e's)."""

    runtime_env = RUNTIME_ENV
    posix = POSIX
    windows = WINDOWS
    wheel = staticmethod(wheel)
    runtime_source = staticmethod(runtime_source)
    compose_config = staticmethod(compose_config)
    compose_runtime = staticmethod(compose_runtime)
    pack_config = staticmethod(pack_config)
    compose_tree = staticmethod(compose_tree)
    pack_tree = staticmethod(pack_tree)
    build_and_pack = staticmethod(build_and_pack)
    file_module_hash = staticmethod(file_module_hash)
    package_module_hash = staticmethod(package_module_hash)
    tree_files = staticmethod(tree_files)


@pytest.fixture(scope="session")
def kit() -> type[Kit]:
    return Kit
