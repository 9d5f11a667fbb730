"""Shared fixtures of the stacktool unit tests: real wheels from PyPI, real uv, the local runtime archive.

Nothing here is mocked: wheels are downloaded once per session with the dev env's pip, installed with
stacktool's own installer, and layers are composed and packed with the real verbs.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from stacktool.compose import compose
from stacktool.install import install_wheel, unpack_runtime
from stacktool.layout import Layout
from stacktool.pack import pack_layer

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


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


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


@pytest.fixture(scope="session")
def runtime_tree(runtime_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The local runtime archive unpacked by `unpack_runtime` (the runtime's base tree)."""
    out = tmp_path_factory.mktemp("runtime-tree")
    unpack_runtime(runtime_archive, out, POSIX)
    return out


def wheel_entry(wheel: Path, tree: Path) -> dict[str, Any]:
    """A compose/pack `wheels` entry for a downloaded wheel and its installed tree."""
    name, version = wheel.name.split("-")[:2]
    return {"filename": wheel.name, "name": name, "version": version, "sha256": sha256_file(wheel), "tree": str(tree)}


def compose_config(
    env_name: str,
    kind: str,
    *,
    wheels: list[dict[str, Any]] | None = None,
    lower: list[str] | None = None,
    runtime_archive: Path | None = None,
    modules: list[dict[str, str]] | None = None,
    launch_module: str | None = None,
    platform: str = "linux_x86_64",
    dynlib_exclude: list[str] | None = None,
) -> dict[str, Any]:
    """The JSON config rules/private/layer.bzl writes for the compose verb (same fields)."""
    return {
        "env_name": env_name,
        "kind": kind,
        "launch_module": launch_module,
        "lower": lower if lower is not None else ([] if kind == "runtime" else [RUNTIME_ENV]),
        "platform": platform,
        "runtime": env_name if kind == "runtime" else RUNTIME_ENV,
        "wheels": wheels or [],
        "runtime_archive": str(runtime_archive) if runtime_archive else None,
        "dynlib_exclude": dynlib_exclude or [],
        "modules": modules or [],
        "python": "3.11",
    }


def pack_config(compose_cfg: dict[str, Any], pylock: Path, runtime_info: Path, fmt: str = "tar.zst") -> dict[str, Any]:
    """The JSON config rules/private/layer.bzl writes for the pack verb."""
    common = {k: compose_cfg[k] for k in ("env_name", "kind", "launch_module", "lower", "platform", "runtime")}
    return common | {
        "wheels": [{k: w[k] for k in ("filename", "name", "sha256", "version")} for w in compose_cfg["wheels"]],
        "archive_format": fmt,
        "label": f"//stacks:{compose_cfg['env_name']}",
        "layer_name": compose_cfg["env_name"],
        "lock_label": "//stacks:lock",
        "pylock_sha256": sha256_file(pylock),
        "runtime_info": str(runtime_info),
    }


def write_runtime_info(runtime_archive: Path, path: Path) -> Path:
    """runtime.json as rules/private/runtime_repo.bzl writes it for a local archive."""
    info = {
        "file": runtime_archive.name,
        "origin": "local",
        "python_version": "3.11.7",
        "sha256": sha256_file(runtime_archive),
    }
    path.write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    return path


def build_and_pack(cfg: dict[str, Any], work: Path, publish: Path, runtime_info: Path) -> Path:
    """compose + pack one layer; returns its metadata file in `publish`."""
    tree = work / cfg["env_name"]
    tree.mkdir(parents=True)
    compose(cfg, tree)
    pylock = work / f"pylock.{cfg['env_name']}.toml"
    pylock.write_text(f"# lock of {cfg['env_name']}\n", encoding="utf-8")
    metadata = publish / f"{cfg['env_name']}-linux_x86_64.json"
    archive = publish / f"{cfg['env_name']}-linux_x86_64.tar.zst"
    pack_layer(tree, archive, metadata, pylock, pack_config(cfg, pylock, runtime_info))
    return metadata


LAUNCH_MODULE = """\
import sys

import six

print("hello from", sys.prefix)
print("six", six.__version__, "from", six.__file__)
print("args", sys.argv[1:])
"""


@pytest.fixture(scope="session")
def published_stack(
    runtime_archive: Path,
    wheels: dict[str, Path],
    posix_trees: dict[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> list[Path]:
    """A published three-layer stack (runtime, framework with six, application with a launch module).

    Returns the metadata files, lowest layer first; the archives sit next to them.
    """
    work = tmp_path_factory.mktemp("stack-build")
    publish = tmp_path_factory.mktemp("published")
    runtime_info = write_runtime_info(runtime_archive, work / "runtime.json")
    launch = work / "src" / "hello_app.py"
    launch.parent.mkdir()
    launch.write_text(LAUNCH_MODULE, encoding="utf-8")
    six = wheel_entry(wheels["six-1.16.0"], posix_trees["six-1.16.0"])
    configs = [
        compose_config(RUNTIME_ENV, "runtime", runtime_archive=runtime_archive),
        compose_config("framework-sci", "framework", wheels=[six]),
        compose_config(
            "app-hello",
            "application",
            lower=["framework-sci", RUNTIME_ENV],
            modules=[{"dest": "hello_app.py", "src": str(launch)}],
            launch_module="hello_app",
        ),
    ]
    return [build_and_pack(cfg, work, publish, runtime_info) for cfg in configs]


class Kit:
    """The helpers above, for test modules (importing conftest by name is ambiguous with tests/e2e's)."""

    runtime_env = RUNTIME_ENV
    posix = POSIX
    windows = WINDOWS
    sha256_file = staticmethod(sha256_file)
    wheel_entry = staticmethod(wheel_entry)
    compose_config = staticmethod(compose_config)
    pack_config = staticmethod(pack_config)
    write_runtime_info = staticmethod(write_runtime_info)
    build_and_pack = staticmethod(build_and_pack)


@pytest.fixture(scope="session")
def kit() -> type[Kit]:
    return Kit
