"""Tests for stacktool.compose (and stacktool.staging): layer trees from installed wheel trees and runtimes.

Framework and application layers are composed over `fixture_runtime` (a runtime layer composed from a
layout-faithful fixture archive) or over a Windows fixture runtime; runtime layers from the local runtime archive,
the fixture archives or small hand-made archives.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
from runtime_fixtures import PE, make_fixture_runtime, pbs_triple
from stacktool.compose import ComposeError, compose, import_names, runtime_record
from stacktool.contract import (
    LAYER_RECORD,
    ContractError,
    LayerRecord,
    Module,
    ModuleHash,
    Package,
    RuntimeRecord,
    RuntimeSource,
    VenvLinks,
    Wheel,
    read_json,
    to_json,
)
from stacktool.install import InstallError, install_wheel
from stacktool.link import INJECTED, LinkError, python_wrapper
from stacktool.staging import unstaged

SITE = "lib/python3.11/site-packages"
SIX_SHA256 = "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254"
FIXTURE_LINUX_ARCHIVE = f"cpython-3.11.99+fixture-{pbs_triple('linux_x86_64')}-install_only.tar.gz"
POSIX_VENV_SYMLINKS = {"bin/python3": "python", "bin/python3.11": "python"}


def entry(name: str, version: str, tree: Path, filename: str | None = None) -> Wheel:
    filename = filename or f"{name}-{version}-py3-none-any.whl"
    return Wheel(name=name, version=version, filename=filename, sha256="0" * 64, tree=str(tree))


def make_tree(root: Path, files: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    for rel, target in (links or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).symlink_to(target)
    return root


def files_of(tree: Path) -> dict[str, bytes]:
    """relative path -> content of every file in `tree` (no symlinks expected)."""
    return {p.relative_to(tree).as_posix(): p.read_bytes() for p in sorted(tree.rglob("*")) if not p.is_dir()}


def symlinks_of(tree: Path) -> dict[str, str]:
    """Every symlink of `tree`: relative path -> target."""
    return {p.relative_to(tree).as_posix(): os.readlink(p) for p in sorted(tree.rglob("*")) if p.is_symlink()}


def sha256_hex(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_compose(kit, out: Path, env_name: str, kind: str, **kwargs: Any) -> RuntimeRecord:
    """Composes a framework or application layer (pass `runtime=`) into the new directory `out`."""
    config = kit.compose_config(env_name, kind, **kwargs)
    out.mkdir()
    return compose(config, out)


def record_of(layer: Path) -> LayerRecord:
    return read_json(LayerRecord, layer / LAYER_RECORD)


@pytest.fixture
def framework(kit, wheels, posix_trees, fixture_runtime, tmp_path) -> Path:
    out = tmp_path / "framework-sci"
    six = kit.wheel(wheels["six-1.16.0"], posix_trees["six-1.16.0"])
    wheel = kit.wheel(wheels["wheel-0.45.1"], posix_trees["wheel-0.45.1"])
    run_compose(kit, out, "framework-sci", "framework", runtime=fixture_runtime, wheels=[six, wheel])
    return out


def test_files_are_hard_links_of_the_installed_trees(framework, posix_trees):
    for rel, tree in ((f"{SITE}/six.py", "six-1.16.0"), ("bin/wheel", "wheel-0.45.1")):
        composed, installed = (framework / rel).stat(), (posix_trees[tree] / rel).stat()
        assert (composed.st_ino, composed.st_dev) == (installed.st_ino, installed.st_dev), rel
    assert (framework / f"{SITE}/wheel-0.45.1.dist-info/RECORD").is_file()


def test_venv_layer_gets_the_runtime_venv_files_and_aliases(framework, fixture_runtime):
    wrapper = framework / "bin" / "python"
    assert wrapper.read_text(encoding="utf-8") == python_wrapper("LD_LIBRARY_PATH")
    # the wrapper is the runtime layer's venv file, linked in (not written again by every layer)
    published = (fixture_runtime.venv_files / "bin" / "python").stat()
    assert (wrapper.stat().st_ino, wrapper.stat().st_dev) == (published.st_ino, published.st_dev)
    for alias in ("python3", "python3.11"):
        assert os.readlink(framework / "bin" / alias) == "python"
    assert not (framework / "bin" / "python_").exists()  # postinstall links it to the runtime
    assert (framework / "postinstall.py").read_bytes() == (INJECTED / "postinstall.py").read_bytes()
    # the aliases are symlinks, which pack archives as such
    links = symlinks_of(framework)
    assert {k: links[k] for k in POSIX_VENV_SYMLINKS} == POSIX_VENV_SYMLINKS


def test_layers_path_files(framework):
    site = framework / SITE
    assert (site / "_venvstacks_layers.pth").read_bytes() == b"import _venvstacks_layers\n"
    assert (site / "_venvstacks_layers.py").read_bytes() == (INJECTED / "_venvstacks_layers.py").read_bytes()
    config = json.loads((site / "_venvstacks_layers.json").read_text(encoding="utf-8"))
    assert config == {"site_packages": ["../../../../cpython3_11/lib/python3.11/site-packages"], "dll_directories": []}


def test_layer_record(framework, fixture_runtime, wheels):
    text = (framework / LAYER_RECORD).read_text(encoding="utf-8")
    record = read_json(LayerRecord, framework / LAYER_RECORD)  # strict: exactly the fields of a LayerRecord
    assert text == to_json(record)  # written canonically
    assert "windows" not in json.loads(text)
    source = read_json(RuntimeRecord, fixture_runtime.record).source
    assert (source.file, source.origin, source.python_version) == (FIXTURE_LINUX_ARCHIVE, "local", "3.11.99")
    assert record == LayerRecord(
        record_version=2,
        env_name="framework-sci",
        install_target="framework-sci",
        kind="framework",
        platform="linux_x86_64",
        python="3.11",
        runtime="cpython3_11",
        runtime_interpreter="bin/python3.11",
        runtime_source=source,
        lower=("cpython3_11",),
        launch_module=None,
        support_modules=(),
        interpreter="bin/python",
        site_packages=SITE,
        dynlib_dir="share/venv/dynlib",
        venv_links=VenvLinks(base_python="bin/python_", library_path="share/venvstacks/library_path"),
        packages=(
            Package("six", "1.16.0", "six-1.16.0-py2.py3-none-any.whl", SIX_SHA256, ("six",)),
            Package("wheel", "0.45.1", "wheel-0.45.1-py3-none-any.whl", sha256_hex(wheels["wheel-0.45.1"]), ("wheel",)),
        ),
    )
    assert not (framework / "share/venv/dynlib").exists()  # pure wheels: no shared libraries to expose


def test_conflicting_inputs_name_both(kit, wheels, posix_trees, fixture_runtime, tmp_path):
    old = kit.wheel(wheels["six-1.16.0"], posix_trees["six-1.16.0"])
    new = kit.wheel(wheels["six-1.17.0"], posix_trees["six-1.17.0"])
    with pytest.raises(ComposeError) as error:
        run_compose(kit, tmp_path / "out", "framework-x", "framework", runtime=fixture_runtime, wheels=[old, new])
    assert str(error.value) == (
        f"six-1.17.0-py2.py3-none-any.whl and six-1.16.0-py2.py3-none-any.whl both install {SITE}/six.py"
    )


def test_identical_content_is_allowed(kit, fixture_runtime, tmp_path):
    a = make_tree(tmp_path / "a", {f"{SITE}/ns/__init__.py": b"# namespace\n", f"{SITE}/ns/a.py": b"A = 1\n"})
    b = make_tree(tmp_path / "b", {f"{SITE}/ns/__init__.py": b"# namespace\n", f"{SITE}/ns/b.py": b"B = 1\n"})
    out = tmp_path / "out"
    wheels = [entry("ns-a", "1", a), entry("ns-b", "1", b)]
    run_compose(kit, out, "framework-x", "framework", runtime=fixture_runtime, wheels=wheels)
    assert (out / SITE / "ns" / "a.py").exists()
    assert (out / SITE / "ns" / "b.py").exists()
    assert (out / SITE / "ns" / "__init__.py").stat().st_ino == (a / SITE / "ns" / "__init__.py").stat().st_ino


@pytest.mark.parametrize(
    ("rel", "owner"),
    [
        (f"{SITE}/_venvstacks_layers.pth", "rules_venvstacks (framework-x)"),  # a generated file
        ("bin/python3", "rules_venvstacks (framework-x)"),  # a venv symlink of the runtime record
        ("bin/python", "venv files of runtime layer cpython3_11"),  # a venv file of the runtime layer
        (LAYER_RECORD, "rules_venvstacks (framework-x)"),
    ],
)
def test_input_conflicting_with_generated_file(kit, fixture_runtime, tmp_path, rel, owner):
    rogue = make_tree(tmp_path / "rogue", {rel: b"import os\n"})
    with pytest.raises(ComposeError) as error:
        run_compose(
            kit, tmp_path / "out", "framework-x", "framework", runtime=fixture_runtime,
            wheels=[entry("rogue", "1", rogue)],
        )  # fmt: skip
    assert str(error.value) == f"{owner} and rogue-1-py3-none-any.whl both install {rel}"


def test_relative_symlinks_of_a_tree_are_kept(kit, fixture_runtime, tmp_path):
    tree = make_tree(
        tmp_path / "tree",
        {f"{SITE}/pkg/libx.so.1": b"\x7fELF lib", f"{SITE}/pkg/real_data/a.txt": b"a"},
        {f"{SITE}/pkg/libx.so": "libx.so.1", f"{SITE}/pkg/data": "real_data"},
    )
    out = tmp_path / "out"
    run_compose(kit, out, "framework-x", "framework", runtime=fixture_runtime, wheels=[entry("pkg", "1", tree)])
    assert os.readlink(out / SITE / "pkg" / "libx.so") == "libx.so.1"
    assert os.readlink(out / SITE / "pkg" / "data") == "real_data"
    assert (out / SITE / "pkg" / "data" / "a.txt").read_bytes() == b"a"  # through the link, not a copy
    # the shared library (reached through its link) is exposed to upper layers
    assert os.readlink(out / "share/venv/dynlib/libx.so") == f"../../../{SITE}/pkg/libx.so"
    assert (out / "share/venv/dynlib/libx.so").read_bytes() == b"\x7fELF lib"
    assert symlinks_of(out) == {
        f"{SITE}/pkg/libx.so": "libx.so.1",
        f"{SITE}/pkg/data": "real_data",
        "share/venv/dynlib/libx.so": f"../../../{SITE}/pkg/libx.so",
        **POSIX_VENV_SYMLINKS,
    }


def stage(real: Path, staged: Path) -> Path:
    """A tree as a Bazel sandbox presents it: real directories, every other entry an absolute symlink."""
    for directory, dirnames, files in os.walk(real):
        rel = Path(directory).relative_to(real)
        (staged / rel).mkdir(parents=True, exist_ok=True)
        for name in files + [d for d in dirnames if (Path(directory) / d).is_symlink()]:
            (staged / rel / name).symlink_to(Path(directory) / name)
    return staged


def test_staged_absolute_symlinks_are_followed(kit, fixture_runtime, tmp_path):
    real = make_tree(
        tmp_path / "real",
        {f"{SITE}/pkg/__init__.py": b"x = 1\n", f"{SITE}/pkg/libx.so.1": b"lib"},
        {f"{SITE}/pkg/libx.so": "libx.so.1"},
    )
    staged = stage(real, tmp_path / "staged")
    assert os.path.isabs(os.readlink(staged / SITE / "pkg" / "__init__.py"))
    staged_venv_files = stage(fixture_runtime.venv_files, tmp_path / "staged-venv-files")
    assert os.path.isabs(os.readlink(staged_venv_files / "bin" / "python"))
    config = kit.compose_config("framework-x", "framework", runtime=fixture_runtime, wheels=[entry("pkg", "1", staged)])
    out = tmp_path / "out"
    out.mkdir()
    compose(dataclasses.replace(config, venv_files=str(staged_venv_files)), out)
    composed = out / SITE / "pkg" / "__init__.py"
    assert not composed.is_symlink()
    assert composed.stat().st_ino == (real / SITE / "pkg" / "__init__.py").stat().st_ino
    assert os.readlink(out / SITE / "pkg" / "libx.so") == "libx.so.1"  # the tree's own link, still relative
    wrapper = out / "bin" / "python"  # the runtime's venv files, staged too, are followed as well
    assert not wrapper.is_symlink()
    assert wrapper.stat().st_ino == (fixture_runtime.venv_files / "bin" / "python").stat().st_ino


def test_unstaged(tmp_path):
    real = make_tree(tmp_path / "real", {"f": b"x"}, {"rel": "f"})
    (tmp_path / "abs1").symlink_to(real / "f")
    (tmp_path / "abs2").symlink_to(tmp_path / "abs1")  # chains of absolute links
    (tmp_path / "abs_to_rel").symlink_to(real / "rel")
    assert unstaged(tmp_path / "abs2") == real / "f"
    assert unstaged(tmp_path / "abs_to_rel") == real / "rel"  # stops at a relative link
    assert unstaged(real / "rel") == real / "rel"
    assert unstaged(real / "f") == real / "f"


def test_launch_and_support_modules(kit, wheels, posix_trees, fixture_runtime, tmp_path):
    src = make_tree(
        tmp_path / "src", {"hello_app.py": b"print('hi')\n", "helpers/__init__.py": b"", "helpers/x.py": b"X = 2\n"}
    )
    modules = [
        Module(dest="hello_app.py", src=str(src / "hello_app.py")),
        Module(dest="helpers/__init__.py", src=str(src / "helpers/__init__.py")),
        Module(dest="helpers/x.py", src=str(src / "helpers/x.py")),
    ]
    out = tmp_path / "app-hello"
    six = kit.wheel(wheels["six-1.16.0"], posix_trees["six-1.16.0"])
    run_compose(
        kit, out, "app-hello", "application", runtime=fixture_runtime, wheels=[six], modules=modules,
        launch_module="hello_app", support_modules=["helpers"], lower=["framework-sci", "cpython3_11"],
    )  # fmt: skip
    for module in modules:
        assert (out / SITE / module.dest).read_bytes() == Path(module.src).read_bytes()
    record = record_of(out)
    # the modules with venvstacks' hashes of them: `sha256:` for a module file, `sha256/` for a package directory
    assert record.launch_module == ModuleHash("hello_app", kit.file_module_hash(src / "hello_app.py"))
    assert record.launch_module.hash.startswith("sha256:")
    assert record.support_modules == (ModuleHash("helpers", kit.package_module_hash(src / "helpers")),)
    assert record.support_modules[0].hash.startswith("sha256/")
    assert record.kind == "application"
    assert record.lower == ("framework-sci", "cpython3_11")
    assert (record.runtime, record.interpreter) == ("cpython3_11", "bin/python")
    # modules are not packages: only the wheels are listed (and checked for imports)
    assert [(p.name, p.import_names) for p in record.packages] == [("six", ("six",))]
    layers = json.loads((out / SITE / "_venvstacks_layers.json").read_text(encoding="utf-8"))
    assert layers["site_packages"] == [
        "../../../../framework-sci/lib/python3.11/site-packages",
        "../../../../cpython3_11/lib/python3.11/site-packages",
    ]


def test_versioned_layer_records_its_install_target(kit, fixture_runtime, tmp_path):
    """A versioned layer keeps its env_name and is deployed as its install target; the layers below it are named
    by their install targets, in its record and in the paths it imports from."""
    out = tmp_path / "app-hello"
    run_compose(
        kit, out, "app-hello", "application", runtime=fixture_runtime, install_target="app-hello@4",
        lower=["framework-sci@2", "cpython3_11"],
    )  # fmt: skip
    record = record_of(out)
    assert (record.env_name, record.install_target) == ("app-hello", "app-hello@4")
    assert (record.lower, record.runtime) == (("framework-sci@2", "cpython3_11"), "cpython3_11")
    assert (record.launch_module, record.support_modules) == (None, ())
    layers = json.loads((out / SITE / "_venvstacks_layers.json").read_text(encoding="utf-8"))
    assert layers["site_packages"] == [
        "../../../../framework-sci@2/lib/python3.11/site-packages",
        "../../../../cpython3_11/lib/python3.11/site-packages",
    ]


def test_module_conflicting_with_a_wheel(kit, wheels, posix_trees, fixture_runtime, tmp_path):
    src = make_tree(tmp_path / "src", {"six.py": b"# mine\n"})
    six = kit.wheel(wheels["six-1.16.0"], posix_trees["six-1.16.0"])
    with pytest.raises(ComposeError) as error:
        run_compose(
            kit, tmp_path / "out", "app-x", "application", runtime=fixture_runtime, wheels=[six],
            modules=[Module(dest="six.py", src=str(src / "six.py"))], launch_module="six",
        )  # fmt: skip
    assert str(error.value) == f"{src / 'six.py'} and six-1.16.0-py2.py3-none-any.whl both install {SITE}/six.py"


def test_runtime_layer(kit, wheels, posix_trees, runtime_archive, tmp_path):
    out, venv_files = tmp_path / "cpython3_11", tmp_path / "venv_files"
    out.mkdir()
    venv_files.mkdir()
    six = kit.wheel(wheels["six-1.16.0"], posix_trees["six-1.16.0"])
    config = kit.compose_config(
        "cpython3_11", "runtime", runtime_archive=runtime_archive, runtime_source_file=tmp_path / "runtime.json",
        wheels=[six],
    )  # fmt: skip
    published = runtime_record(config, venv_files)
    assert compose(config, out) == published
    # what the layers above the runtime get: its interpreter, where it came from, their venv files and links
    source = RuntimeSource(
        file=runtime_archive.name, origin="local", python_version="3.11.7", sha256=sha256_hex(runtime_archive)
    )
    assert published == RuntimeRecord(interpreter="bin/python3.11", source=source, venv_symlinks=POSIX_VENV_SYMLINKS)
    assert files_of(venv_files) == {"bin/python": python_wrapper("LD_LIBRARY_PATH").encode()}
    # the runtime layer itself
    assert not (out / "python").exists()  # the archive's top directory is dropped
    assert os.readlink(out / "bin" / "python3") == "python3.11"  # the archive's links stay relative links
    assert os.readlink(out / "bin" / "python") == "python3.11"  # the runtime's own, not a wrapper
    assert (out / SITE / "six.py").stat().st_ino == (posix_trees["six-1.16.0"] / SITE / "six.py").stat().st_ino
    assert not (out / SITE / "_venvstacks_layers.pth").exists()
    assert record_of(out) == LayerRecord(
        record_version=2,
        env_name="cpython3_11",
        install_target="cpython3_11",
        kind="runtime",
        platform="linux_x86_64",
        python="3.11",
        runtime="cpython3_11",
        runtime_interpreter="bin/python3.11",
        runtime_source=source,
        lower=(),
        launch_module=None,
        support_modules=(),
        interpreter="bin/python3.11",
        site_packages=SITE,
        dynlib_dir="share/venv/dynlib",
        venv_links=None,  # the runtime is no venv: postinstall leaves it as it is
        packages=(Package("six", "1.16.0", "six-1.16.0-py2.py3-none-any.whl", SIX_SHA256, ("six",)),),
    )
    assert (out / "postinstall.py").is_file()
    # runtime requirements land in the runtime's own site-packages, where its interpreter finds them
    result = subprocess.run(
        [str(out / "bin" / "python3.11"), "-c", "import six, sys; print(sys.prefix); print(six.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.splitlines() == [str(out), str(out / SITE / "six.py")]


@pytest.mark.parametrize(
    ("platform", "variable"), [("linux_x86_64", "LD_LIBRARY_PATH"), ("macosx_arm64", "DYLD_LIBRARY_PATH")]
)
def test_posix_runtime_publishes_its_record_and_venv_files(kit, tmp_path, platform, variable):
    archive = make_fixture_runtime(tmp_path, platform)
    runtime = kit.compose_runtime(archive, tmp_path / "runtime", platform=platform)
    assert read_json(RuntimeRecord, runtime.record) == RuntimeRecord(
        interpreter="bin/python3.11",
        source=RuntimeSource(file=archive.name, origin="local", python_version="3.11.99", sha256=sha256_hex(archive)),
        venv_symlinks=POSIX_VENV_SYMLINKS,
    )
    assert files_of(runtime.venv_files) == {"bin/python": python_wrapper(variable).encode()}
    # a layer over it gets that wrapper (the platform's library path variable) and the links
    out = tmp_path / "framework-x"
    run_compose(kit, out, "framework-x", "framework", runtime=runtime, platform=platform)
    assert (out / "bin" / "python").read_text(encoding="utf-8") == python_wrapper(variable)
    assert {k: v for k, v in symlinks_of(out).items() if k.startswith("bin/")} == POSIX_VENV_SYMLINKS


def fake_runtime(path: Path, members: dict[str, bytes]) -> Path:
    """A small python-build-standalone-like install_only archive (everything under python/)."""
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(f"python/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def test_wheel_conflicting_with_runtime_file(kit, tmp_path):
    archive = make_fixture_runtime(tmp_path, "linux_x86_64")  # has site-packages/README.txt, as PBS archives do
    rogue = make_tree(tmp_path / "rogue", {f"{SITE}/README.txt": b"mine\n"})
    with pytest.raises(ComposeError) as error:
        kit.compose_runtime(archive, tmp_path / "layer", wheels=[entry("rogue", "1", rogue)])
    assert (
        str(error.value)
        == f"rogue-1-py3-none-any.whl and runtime archive of cpython3_11 both install {SITE}/README.txt"
    )


def test_runtime_archive_without_interpreter(kit, tmp_path):
    archive = fake_runtime(tmp_path / "cpython-3.12.1+x-install_only.tar.gz", {"bin/python3.12": b"#!/bin/sh\n"})
    with pytest.raises(InstallError, match=r"bin/python3\.11 is missing \(found python3\.12\)"):
        kit.compose_runtime(archive, tmp_path / "layer")


WINDOWS_LAUNCHERS = "Lib/venv/scripts/nt"


@pytest.fixture
def windows_runtime(kit, tmp_path):
    """A win_amd64 runtime layer composed from the Windows fixture archive."""
    archive = make_fixture_runtime(tmp_path, "win_amd64")
    return kit.compose_runtime(archive, tmp_path / "runtime", platform="win_amd64")


def test_windows_runtime_publishes_its_venv_launchers(windows_runtime):
    record = read_json(RuntimeRecord, windows_runtime.record)
    assert record.interpreter == "python.exe"
    assert record.venv_symlinks == {}  # Windows venvs have no links
    assert (record.source.file, record.source.python_version) == (
        f"cpython-3.11.99+fixture-{pbs_triple('win_amd64')}-install_only.tar.gz",
        "3.11.99",
    )
    # the runtime's venv launchers: they start the runtime's python.exe as the venv's python (reading pyvenv.cfg)
    assert files_of(windows_runtime.venv_files) == {
        "Scripts/python.exe": PE + b"venv launcher",
        "Scripts/pythonw.exe": PE + b"venv gui launcher",
    }
    assert (windows_runtime.tree / WINDOWS_LAUNCHERS / "python.exe").read_bytes() == PE + b"venv launcher"
    assert not (windows_runtime.tree / "Scripts").exists()  # the runtime layer itself keeps its own layout
    assert record_of(windows_runtime.tree).interpreter == "python.exe"


def test_windows_layer(kit, wheels, windows_runtime, tmp_path):
    tree = tmp_path / "wheel-tree"
    tree.mkdir()
    install_wheel(wheels["wheel-0.45.1"], tree, kit.windows, "x86_64")
    out = tmp_path / "framework-w"
    wheel = kit.wheel(wheels["wheel-0.45.1"], tree)
    run_compose(kit, out, "framework-w", "framework", runtime=windows_runtime, wheels=[wheel], platform="win_amd64")
    assert (out / "Scripts" / "wheel.exe").is_file()
    # this layer's python is the runtime's venv launcher, from the runtime layer's venv files
    for name in ("python.exe", "pythonw.exe"):
        composed, published = out / "Scripts" / name, windows_runtime.venv_files / "Scripts" / name
        assert composed.read_bytes() == (windows_runtime.tree / WINDOWS_LAUNCHERS / name).read_bytes()
        assert composed.stat().st_ino == published.stat().st_ino
    assert not (out / "bin").exists()  # no POSIX wrapper
    assert symlinks_of(out) == {}  # nor its links
    layers = json.loads((out / "Lib/site-packages/_venvstacks_layers.json").read_text(encoding="utf-8"))
    assert layers["site_packages"] == ["../../../cpython3_11/Lib/site-packages"]
    assert [os.path.normpath(f"Lib/site-packages/{d}") for d in layers["dll_directories"]] == [
        os.path.normpath("../cpython3_11/Library/bin")
    ]
    record = record_of(out)
    assert (record.platform, record.interpreter, record.runtime_interpreter) == (
        "win_amd64", "Scripts/python.exe", "python.exe"
    )  # fmt: skip
    assert record.site_packages == "Lib/site-packages"
    assert record.venv_links is None  # postinstall writes pyvenv.cfg only
    assert record.runtime_source == read_json(RuntimeRecord, windows_runtime.record).source
    assert record.packages == (
        Package("wheel", "0.45.1", "wheel-0.45.1-py3-none-any.whl", sha256_hex(wheels["wheel-0.45.1"]), ("wheel",)),
    )


def test_windows_runtime_prefers_the_newer_venv_launchers(kit, tmp_path):
    """CPython 3.13 ships venvlauncher.exe next to the older python.exe launcher: the newer one is used."""
    archive = fake_runtime(tmp_path / "cpython-3.11.9+x-install_only.tar.gz", {
        "python.exe": PE,
        f"{WINDOWS_LAUNCHERS}/python.exe": PE + b"old",
        f"{WINDOWS_LAUNCHERS}/pythonw.exe": PE + b"old w",
        f"{WINDOWS_LAUNCHERS}/venvlauncher.exe": PE + b"new",
        f"{WINDOWS_LAUNCHERS}/venvwlauncher.exe": PE + b"new w",
    })  # fmt: skip
    runtime = kit.compose_runtime(archive, tmp_path / "layer", platform="win_amd64")
    assert files_of(runtime.venv_files) == {"Scripts/python.exe": PE + b"new", "Scripts/pythonw.exe": PE + b"new w"}


def test_windows_runtime_without_venv_launchers_is_refused(kit, tmp_path):
    archive = fake_runtime(tmp_path / "cpython-3.11.9+x-install_only.tar.gz", {"python.exe": PE})
    with pytest.raises(ComposeError) as error:
        kit.compose_runtime(archive, tmp_path / "layer", platform="win_amd64")
    assert str(error.value) == (
        f"{archive.name} has no Windows venv launcher ({WINDOWS_LAUNCHERS}/venvlauncher.exe or "
        f"{WINDOWS_LAUNCHERS}/python.exe); is it a python-build-standalone install_only archive for Windows?"
    )


def test_linux_archive_for_a_windows_runtime_is_refused(kit, tmp_path):
    archive = make_fixture_runtime(tmp_path, "linux_x86_64")
    with pytest.raises(InstallError) as error:
        kit.compose_runtime(archive, tmp_path / "layer", platform="win_amd64")
    assert str(error.value) == (
        f"{archive.name} is not a CPython 3.11 install_only archive for this platform: python.exe is missing "
        "(found no interpreter)"
    )


NEEDS_RUNTIME = "framework-x: a layer over a runtime needs runtime_record and venv_files"
NEEDS_ARCHIVE = "cpython3_11: a runtime layer needs runtime_archive and runtime_source (or origin)"


@pytest.mark.parametrize(
    ("kind", "change", "message"),
    [
        ("framework", {"runtime_record": None}, NEEDS_RUNTIME),
        ("framework", {"venv_files": None}, NEEDS_RUNTIME),
        ("runtime", {"runtime_source": None}, NEEDS_ARCHIVE),
        ("runtime", {"runtime_archive": None}, NEEDS_ARCHIVE),
    ],
)
def test_incomplete_configs_are_refused(kit, fixture_runtime, tmp_path, kind, change, message):
    if kind == "runtime":
        config = kit.compose_config("cpython3_11", kind, runtime_archive=make_fixture_runtime(tmp_path, "linux_x86_64"))
    else:
        config = kit.compose_config("framework-x", kind, runtime=fixture_runtime)
    out, venv_files = tmp_path / "out", tmp_path / "venv_files"
    out.mkdir()
    venv_files.mkdir()
    with pytest.raises(ComposeError) as error:
        compose(dataclasses.replace(config, **change), out)
    assert str(error.value) == message


def test_runtime_record_is_what_compose_of_the_runtime_layer_says(kit, tmp_path):
    """The runtime-record action (what the layers above wait for) and the runtime layer's own composition agree; it
    unpacks into a scratch directory that it deletes, and refuses a layer that is not a runtime."""
    archive = make_fixture_runtime(tmp_path, "linux_x86_64")
    config = kit.compose_config("cpython3_11", "runtime", runtime_archive=archive)
    out, work = tmp_path / "out", tmp_path / "work"
    out.mkdir()
    (work / "venv_files").mkdir(parents=True)
    assert runtime_record(config, work / "venv_files") == compose(config, out)
    assert files_of(work / "venv_files") == {"bin/python": python_wrapper("LD_LIBRARY_PATH").encode()}
    assert sorted(p.name for p in work.iterdir()) == ["venv_files"]
    with pytest.raises(ComposeError, match=r"^framework-x: only a runtime layer publishes a runtime record$"):
        runtime_record(dataclasses.replace(config, kind="framework", env_name="framework-x"), work / "venv_files")


def test_runtime_record_of_another_version_is_refused(kit, fixture_runtime, tmp_path):
    stale = json.loads(fixture_runtime.record.read_text(encoding="utf-8"))
    del stale["venv_symlinks"]
    stale["windows"] = False
    record = tmp_path / "runtime_record.json"
    record.write_text(json.dumps(stale), encoding="utf-8")
    config = kit.compose_config("framework-x", "framework", runtime=fixture_runtime)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ContractError) as error:
        compose(dataclasses.replace(config, runtime_record=str(record)), out)
    assert str(error.value).startswith(
        f"{record}: RuntimeRecord fields differ (missing: venv_symlinks; unknown: windows)"
    )


def test_shared_libraries_exposed_extension_modules_not(kit, fixture_runtime, tmp_path):
    tree = make_tree(tmp_path / "tree", {
        f"{SITE}/torch/lib/libtorch.so": b"\x7fELF torch",
        f"{SITE}/torch/_C.cpython-311-x86_64-linux-gnu.so": b"\x7fELF ext",
        f"{SITE}/cv2/.libs/libpng16.so": b"\x7fELF png",
    })  # fmt: skip
    out = tmp_path / "out"
    run_compose(
        kit, out, "framework-x", "framework", runtime=fixture_runtime, wheels=[entry("torch", "1", tree)],
        dynlib_exclude=["cv2/*"],
    )  # fmt: skip
    dynlib = out / "share/venv/dynlib"
    assert sorted(p.name for p in dynlib.iterdir()) == ["libtorch.so"]
    assert os.readlink(dynlib / "libtorch.so") == f"../../../{SITE}/torch/lib/libtorch.so"
    assert (dynlib / "libtorch.so").resolve() == (out / SITE / "torch/lib/libtorch.so").resolve()
    assert record_of(out).dynlib_dir == "share/venv/dynlib"  # where postinstall of the layers above looks


def test_duplicate_shared_library_names_are_a_user_error(kit, fixture_runtime, tmp_path):
    tree = make_tree(tmp_path / "tree", {f"{SITE}/a/libz.so": b"\x7fELF a", f"{SITE}/b/libz.so": b"\x7fELF b"})
    with pytest.raises(LinkError) as error:
        run_compose(
            kit, tmp_path / "out", "framework-x", "framework", runtime=fixture_runtime, wheels=[entry("z", "1", tree)]
        )
    assert str(error.value) == (
        "two shared libraries named libz.so in site-packages: a/libz.so and b/libz.so; add one of them (or a "
        "pattern such as 'pkg/*') to the layer's dynlib_exclude"
    )


def test_duplicate_shared_library_names_fail_and_exclude_fixes_it(kit, fixture_runtime, tmp_path):
    tree = make_tree(tmp_path / "tree", {f"{SITE}/a/libz.so": b"\x7fELF a", f"{SITE}/b/libz.so": b"\x7fELF b"})
    with pytest.raises(LinkError, match=r"two shared libraries named libz\.so.*dynlib_exclude"):
        run_compose(
            kit, tmp_path / "out", "framework-x", "framework", runtime=fixture_runtime, wheels=[entry("z", "1", tree)]
        )
    out = tmp_path / "fixed"
    run_compose(
        kit, out, "framework-x", "framework", runtime=fixture_runtime, wheels=[entry("z", "1", tree)],
        dynlib_exclude=["b/libz.so"],
    )  # fmt: skip
    assert (out / "share/venv/dynlib/libz.so").read_bytes() == b"\x7fELF a"


def test_import_names(tmp_path, wheels, kit):
    tree = tmp_path / "tree"
    tree.mkdir()
    install_wheel(wheels["wheel-0.45.1"], tree, kit.posix, "x86_64")
    assert import_names(tree, kit.posix) == ("wheel",)
    fake = make_tree(tmp_path / "fake", {
        f"{SITE}/fake-1.dist-info/RECORD": (
            b"fake/__init__.py,,\nfake.libs/libx.so,,\n_fast.cpython-311-x86_64-linux-gnu.so,,\n"
            b"solo.py,,\nfake-1.dist-info/RECORD,,\n__pycache__/solo.cpython-311.pyc,,\n"
            b"gone/__init__.py,,\n../../../bin/tool,,\n"
        ),
        f"{SITE}/fake/__init__.py": b"",
        f"{SITE}/fake.libs/libx.so": b"",
        f"{SITE}/_fast.cpython-311-x86_64-linux-gnu.so": b"",
        f"{SITE}/solo.py": b"",
    })  # fmt: skip
    assert import_names(fake, kit.posix) == ("_fast", "fake", "solo")
    windows = tmp_path / "windows"
    windows.mkdir()
    install_wheel(wheels["wheel-0.45.1"], windows, kit.windows, "x86_64")
    assert import_names(windows, kit.windows) == ("wheel",)
    assert import_names(windows, kit.posix) == ()  # looked up in the layout's own site-packages


# --------------------------------------------------------------------------------------------------
# a runtime archive the user gave as a label: no runtime repository's record, its version from the layer or the name

ORIGIN = "//stacks:my_runtime"


def label_runtime(kit, archive: Path, python_version: str, tmp_path: Path) -> tuple[RuntimeRecord, LayerRecord]:
    """Composes a runtime layer from `archive` as rules/private/layer.bzl configures one given as a label."""
    config = kit.compose_config(
        "cpython3_11", "runtime", runtime_archive=archive, runtime_source_file=tmp_path / "unused.json"
    )
    config = dataclasses.replace(config, runtime_source=None, runtime_origin=ORIGIN, python_version=python_version)
    out, venv_files = tmp_path / "cpython3_11", tmp_path / "venv_files"
    out.mkdir()
    venv_files.mkdir()
    published = runtime_record(config, venv_files)
    assert compose(config, out) == published
    return published, record_of(out)


def renamed_fixture(tmp_path: Path, name: str) -> Path:
    """The Linux fixture runtime archive under another file name."""
    archive = tmp_path / "archives" / name
    archive.parent.mkdir()
    make_fixture_runtime(tmp_path, "linux_x86_64").rename(archive)
    return archive


@pytest.mark.parametrize(
    ("name", "python_version", "expected"),
    [
        ("cpython-3.11.9+20240726-x86_64-unknown-linux-gnu-install_only.tar.gz", "", "3.11.9"),
        ("cpython-3.11.9+20240726-x86_64-unknown-linux-gnu-install_only.tar.gz", "3.11.4", "3.11.4"),
        ("my_python.tar.gz", "3.11.5", "3.11.5"),
    ],
    ids=["version-from-file-name", "exact-version-over-file-name", "exact-version"],
)
def test_runtime_archive_given_as_a_label(kit, tmp_path, name, python_version, expected):
    archive = renamed_fixture(tmp_path, name)
    published, record = label_runtime(kit, archive, python_version, tmp_path)
    source = RuntimeSource(file=name, origin=ORIGIN, python_version=expected, sha256=sha256_hex(archive))
    assert published.source == source
    assert record.runtime_source == source
    assert published.interpreter == "bin/python3.11"


def test_runtime_archive_given_as_a_label_without_a_version_is_refused(kit, tmp_path):
    archive = renamed_fixture(tmp_path, "my_python.tar.gz")
    with pytest.raises(ComposeError) as error:
        label_runtime(kit, archive, "", tmp_path)
    assert str(error.value) == (
        f"cpython3_11: cannot tell which CPython 3.11.Z my_python.tar.gz ({ORIGIN}) holds; give the layer the exact "
        'version, e.g. python = "3.11.0"'
    )


def test_runtime_archive_of_another_minor_version_is_refused(kit, tmp_path):
    name = "cpython-3.12.1+20240726-x86_64-unknown-linux-gnu-install_only.tar.gz"
    archive = renamed_fixture(tmp_path, name)
    with pytest.raises(ComposeError) as error:
        label_runtime(kit, archive, "", tmp_path)
    assert str(error.value) == (
        f"cpython3_11: {name} ({ORIGIN}) holds CPython 3.12.1, but the layer asks for 3.11; give it an archive of "
        "CPython 3.11"
    )
