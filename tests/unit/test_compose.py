"""Tests for stacktool.compose (and stacktool.staging): layer trees from installed wheel trees and runtimes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
from stacktool.compose import ComposeError, compose, import_names, recorded_symlinks
from stacktool.errors import UserError
from stacktool.install import InstallError, install_wheel
from stacktool.link import INJECTED, python_wrapper
from stacktool.staging import unstaged

SITE = "lib/python3.11/site-packages"


def entry(name: str, version: str, tree: Path, filename: str | None = None) -> dict[str, Any]:
    filename = filename or f"{name}-{version}-py3-none-any.whl"
    return {"filename": filename, "name": name, "version": version, "sha256": "0" * 64, "tree": str(tree)}


def make_tree(root: Path, files: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    for rel, target in (links or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).symlink_to(target)
    return root


def run_compose(kit, out: Path, env_name: str, kind: str, **kwargs: Any) -> dict[str, Any]:
    config = kit.compose_config(env_name, kind, **kwargs)
    out.mkdir()
    compose(config, out)
    return config


@pytest.fixture
def framework(kit, wheels, posix_trees, tmp_path) -> Path:
    out = tmp_path / "framework-sci"
    six = kit.wheel_entry(wheels["six-1.16.0"], posix_trees["six-1.16.0"])
    wheel = kit.wheel_entry(wheels["wheel-0.45.1"], posix_trees["wheel-0.45.1"])
    run_compose(kit, out, "framework-sci", "framework", wheels=[six, wheel])
    return out


def test_files_are_hard_links_of_the_installed_trees(framework, posix_trees):
    for rel, tree in ((f"{SITE}/six.py", "six-1.16.0"), ("bin/wheel", "wheel-0.45.1")):
        composed, installed = (framework / rel).stat(), (posix_trees[tree] / rel).stat()
        assert (composed.st_ino, composed.st_dev) == (installed.st_ino, installed.st_dev), rel
    assert (framework / f"{SITE}/wheel-0.45.1.dist-info/RECORD").is_file()


def test_venv_layer_gets_python_wrapper_and_aliases(framework):
    assert (framework / "bin" / "python").read_text(encoding="utf-8") == python_wrapper("LD_LIBRARY_PATH")
    for alias in ("python3", "python3.11"):
        assert os.readlink(framework / "bin" / alias) == "python"
    assert not (framework / "bin" / "python_").exists()  # postinstall links it to the runtime
    assert (framework / "postinstall.py").read_bytes() == (INJECTED / "postinstall.py").read_bytes()


def test_layers_path_files(framework):
    site = framework / SITE
    assert (site / "_venvstacks_layers.pth").read_bytes() == b"import _venvstacks_layers\n"
    assert (site / "_venvstacks_layers.py").read_bytes() == (INJECTED / "_venvstacks_layers.py").read_bytes()
    config = json.loads((site / "_venvstacks_layers.json").read_text(encoding="utf-8"))
    assert config == {"site_packages": ["../../../../cpython3_11/lib/python3.11/site-packages"], "dll_directories": []}


def test_layer_config(framework):
    config = json.loads((framework / "share/venvstacks/layer.json").read_text(encoding="utf-8"))
    assert config == {
        "env_name": "framework-sci",
        "kind": "framework",
        "python": "3.11",
        "platform": "linux_x86_64",
        "windows": False,
        "runtime": "cpython3_11",
        "lower": ["cpython3_11"],
        "launch_module": None,
        "packages": [
            {"name": "six", "version": "1.16.0", "import_names": ["six"]},
            {"name": "wheel", "version": "0.45.1", "import_names": ["wheel"]},
        ],
    }
    assert not (framework / "share/venv/dynlib").exists()  # pure wheels: no shared libraries to expose


def test_conflicting_inputs_name_both(kit, wheels, posix_trees, tmp_path):
    old = kit.wheel_entry(wheels["six-1.16.0"], posix_trees["six-1.16.0"])
    new = kit.wheel_entry(wheels["six-1.17.0"], posix_trees["six-1.17.0"])
    with pytest.raises(ComposeError) as error:
        run_compose(kit, tmp_path / "out", "framework-x", "framework", wheels=[old, new])
    assert str(error.value) == (
        f"six-1.17.0-py2.py3-none-any.whl and six-1.16.0-py2.py3-none-any.whl both install {SITE}/six.py"
    )


def test_identical_content_is_allowed(kit, tmp_path):
    a = make_tree(tmp_path / "a", {f"{SITE}/ns/__init__.py": b"# namespace\n", f"{SITE}/ns/a.py": b"A = 1\n"})
    b = make_tree(tmp_path / "b", {f"{SITE}/ns/__init__.py": b"# namespace\n", f"{SITE}/ns/b.py": b"B = 1\n"})
    out = tmp_path / "out"
    run_compose(kit, out, "framework-x", "framework", wheels=[entry("ns-a", "1", a), entry("ns-b", "1", b)])
    assert (out / SITE / "ns" / "a.py").exists()
    assert (out / SITE / "ns" / "b.py").exists()
    assert (out / SITE / "ns" / "__init__.py").stat().st_ino == (a / SITE / "ns" / "__init__.py").stat().st_ino


def test_input_conflicting_with_generated_file(kit, tmp_path):
    rogue = make_tree(tmp_path / "rogue", {f"{SITE}/_venvstacks_layers.pth": b"import os\n"})
    with pytest.raises(ComposeError) as error:
        run_compose(kit, tmp_path / "out", "framework-x", "framework", wheels=[entry("rogue", "1", rogue)])
    assert (
        str(error.value)
        == f"rules_venvstacks (framework-x) and rogue-1-py3-none-any.whl both install {SITE}/_venvstacks_layers.pth"
    )


def test_relative_symlinks_of_a_tree_are_kept(kit, tmp_path):
    tree = make_tree(
        tmp_path / "tree",
        {f"{SITE}/pkg/libx.so.1": b"\x7fELF lib", f"{SITE}/pkg/real_data/a.txt": b"a"},
        {f"{SITE}/pkg/libx.so": "libx.so.1", f"{SITE}/pkg/data": "real_data"},
    )
    out = tmp_path / "out"
    run_compose(kit, out, "framework-x", "framework", wheels=[entry("pkg", "1", tree)])
    assert os.readlink(out / SITE / "pkg" / "libx.so") == "libx.so.1"
    assert os.readlink(out / SITE / "pkg" / "data") == "real_data"
    assert (out / SITE / "pkg" / "data" / "a.txt").read_bytes() == b"a"  # through the link, not a copy
    # the shared library (reached through its link) is exposed to upper layers
    assert os.readlink(out / "share/venv/dynlib/libx.so") == f"../../../{SITE}/pkg/libx.so"
    assert (out / "share/venv/dynlib/libx.so").read_bytes() == b"\x7fELF lib"


def stage(real: Path, staged: Path) -> Path:
    """A tree as a Bazel sandbox presents it: real directories, every other entry an absolute symlink."""
    for directory, dirnames, files in os.walk(real):
        rel = Path(directory).relative_to(real)
        (staged / rel).mkdir(parents=True, exist_ok=True)
        for name in files + [d for d in dirnames if (Path(directory) / d).is_symlink()]:
            (staged / rel / name).symlink_to(Path(directory) / name)
    return staged


def test_staged_absolute_symlinks_are_followed(kit, tmp_path):
    real = make_tree(
        tmp_path / "real",
        {f"{SITE}/pkg/__init__.py": b"x = 1\n", f"{SITE}/pkg/libx.so.1": b"lib"},
        {f"{SITE}/pkg/libx.so": "libx.so.1"},
    )
    staged = stage(real, tmp_path / "staged")
    assert os.path.isabs(os.readlink(staged / SITE / "pkg" / "__init__.py"))
    out = tmp_path / "out"
    run_compose(kit, out, "framework-x", "framework", wheels=[entry("pkg", "1", staged)])
    composed = out / SITE / "pkg" / "__init__.py"
    assert not composed.is_symlink()
    assert composed.stat().st_ino == (real / SITE / "pkg" / "__init__.py").stat().st_ino
    assert os.readlink(out / SITE / "pkg" / "libx.so") == "libx.so.1"  # the tree's own link, still relative


def test_unstaged(tmp_path):
    real = make_tree(tmp_path / "real", {"f": b"x"}, {"rel": "f"})
    (tmp_path / "abs1").symlink_to(real / "f")
    (tmp_path / "abs2").symlink_to(tmp_path / "abs1")  # chains of absolute links
    (tmp_path / "abs_to_rel").symlink_to(real / "rel")
    assert unstaged(tmp_path / "abs2") == real / "f"
    assert unstaged(tmp_path / "abs_to_rel") == real / "rel"  # stops at a relative link
    assert unstaged(real / "rel") == real / "rel"
    assert unstaged(real / "f") == real / "f"


def test_launch_and_support_modules(kit, wheels, posix_trees, tmp_path):
    src = make_tree(
        tmp_path / "src", {"hello_app.py": b"print('hi')\n", "helpers/__init__.py": b"", "helpers/x.py": b"X = 2\n"}
    )
    modules = [
        {"dest": "hello_app.py", "src": str(src / "hello_app.py")},
        {"dest": "helpers/__init__.py", "src": str(src / "helpers/__init__.py")},
        {"dest": "helpers/x.py", "src": str(src / "helpers/x.py")},
    ]
    out = tmp_path / "app-hello"
    six = kit.wheel_entry(wheels["six-1.16.0"], posix_trees["six-1.16.0"])
    run_compose(
        kit, out, "app-hello", "application", wheels=[six], modules=modules, launch_module="hello_app",
        lower=["framework-sci", "cpython3_11"],
    )  # fmt: skip
    for module in modules:
        assert (out / SITE / module["dest"]).read_bytes() == Path(module["src"]).read_bytes()
    config = json.loads((out / "share/venvstacks/layer.json").read_text(encoding="utf-8"))
    assert config["launch_module"] == "hello_app"
    assert config["kind"] == "application"
    assert config["lower"] == ["framework-sci", "cpython3_11"]
    layers = json.loads((out / SITE / "_venvstacks_layers.json").read_text(encoding="utf-8"))
    assert layers["site_packages"] == [
        "../../../../framework-sci/lib/python3.11/site-packages",
        "../../../../cpython3_11/lib/python3.11/site-packages",
    ]


def test_module_conflicting_with_a_wheel(kit, wheels, posix_trees, tmp_path):
    src = make_tree(tmp_path / "src", {"six.py": b"# mine\n"})
    six = kit.wheel_entry(wheels["six-1.16.0"], posix_trees["six-1.16.0"])
    with pytest.raises(ComposeError) as error:
        run_compose(
            kit, tmp_path / "out", "app-x", "application", wheels=[six],
            modules=[{"dest": "six.py", "src": str(src / "six.py")}], launch_module="six",
        )  # fmt: skip
    assert str(error.value) == f"{src / 'six.py'} and six-1.16.0-py2.py3-none-any.whl both install {SITE}/six.py"


def test_runtime_layer(kit, wheels, posix_trees, runtime_archive, tmp_path):
    out = tmp_path / "cpython3_11"
    six = kit.wheel_entry(wheels["six-1.16.0"], posix_trees["six-1.16.0"])
    run_compose(kit, out, "cpython3_11", "runtime", runtime_archive=runtime_archive, wheels=[six])
    assert not (out / "python").exists()  # the archive's top directory is dropped
    assert os.readlink(out / "bin" / "python3") == "python3.11"  # the archive's links stay relative links
    assert os.readlink(out / "bin" / "python") == "python3.11"  # the runtime's own, not a wrapper
    assert (out / SITE / "six.py").stat().st_ino == (posix_trees["six-1.16.0"] / SITE / "six.py").stat().st_ino
    assert not (out / SITE / "_venvstacks_layers.pth").exists()
    config = json.loads((out / "share/venvstacks/layer.json").read_text(encoding="utf-8"))
    assert (config["kind"], config["runtime"], config["lower"]) == ("runtime", "cpython3_11", [])
    assert config["packages"] == [{"name": "six", "version": "1.16.0", "import_names": ["six"]}]
    assert (out / "postinstall.py").is_file()
    # runtime requirements land in the runtime's own site-packages, where its interpreter finds them
    result = subprocess.run(
        [str(out / "bin" / "python3.11"), "-c", "import six, sys; print(sys.prefix); print(six.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.splitlines() == [str(out), str(out / SITE / "six.py")]


def fake_runtime(path: Path, members: dict[str, bytes]) -> Path:
    """A small python-build-standalone-like install_only archive (everything under python/)."""
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(f"python/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def test_wheel_conflicting_with_runtime_file(kit, tmp_path):
    archive = fake_runtime(tmp_path / "rt.tar.gz", {"bin/python3.11": b"#!/bin/sh\n", f"{SITE}/README.txt": b"pbs\n"})
    rogue = make_tree(tmp_path / "rogue", {f"{SITE}/README.txt": b"mine\n"})
    with pytest.raises(ComposeError) as error:
        run_compose(kit, tmp_path / "out", "cpython3_11", "runtime", runtime_archive=archive,
                    wheels=[entry("rogue", "1", rogue)])  # fmt: skip
    assert (
        str(error.value)
        == f"rogue-1-py3-none-any.whl and runtime archive of cpython3_11 both install {SITE}/README.txt"
    )


def test_runtime_archive_without_interpreter(kit, tmp_path):
    archive = fake_runtime(tmp_path / "rt.tar.gz", {"bin/python3.12": b"#!/bin/sh\n"})
    with pytest.raises(InstallError, match=r"bin/python3\.11 is missing \(found python3\.12\)"):
        run_compose(kit, tmp_path / "out", "cpython3_11", "runtime", runtime_archive=archive)


WINDOWS_LAUNCHERS = "Lib/venv/scripts/nt"


def test_windows_layer(kit, wheels, tmp_path):
    tree = tmp_path / "wheel-tree"
    tree.mkdir()
    install_wheel(wheels["wheel-0.45.1"], tree, kit.windows, "x86_64")
    runtime = fake_runtime(tmp_path / "cpython-win.tar.gz", {
        "python.exe": b"MZ runtime python",
        f"{WINDOWS_LAUNCHERS}/python.exe": b"MZ venv launcher",
        f"{WINDOWS_LAUNCHERS}/pythonw.exe": b"MZ venv w launcher",
    })  # fmt: skip
    out = tmp_path / "framework-w"
    wheel = kit.wheel_entry(wheels["wheel-0.45.1"], tree)
    run_compose(
        kit, out, "framework-w", "framework", wheels=[wheel], platform="win_amd64",
        runtime_archive=runtime,
    )  # fmt: skip
    assert (out / "Scripts" / "wheel.exe").is_file()
    # the runtime's venv launchers start the runtime's python.exe as this layer's python (it reads pyvenv.cfg)
    assert (out / "Scripts" / "python.exe").read_bytes() == b"MZ venv launcher"
    assert (out / "Scripts" / "pythonw.exe").read_bytes() == b"MZ venv w launcher"
    assert not (out / "bin").exists()  # no POSIX wrapper
    layers = json.loads((out / "Lib/site-packages/_venvstacks_layers.json").read_text(encoding="utf-8"))
    assert layers["site_packages"] == ["../../../cpython3_11/Lib/site-packages"]
    assert [os.path.normpath(f"Lib/site-packages/{d}") for d in layers["dll_directories"]] == [
        os.path.normpath("../cpython3_11/Library/bin")
    ]
    config = json.loads((out / "share/venvstacks/layer.json").read_text(encoding="utf-8"))
    assert (config["windows"], config["platform"]) == (True, "win_amd64")
    assert config["packages"] == [{"name": "wheel", "version": "0.45.1", "import_names": ["wheel"]}]


def test_windows_layer_needs_the_runtime_venv_launcher(kit, tmp_path):
    runtime = fake_runtime(tmp_path / "cpython-linux.tar.gz", {"bin/python3.11": b"#!/bin/sh\n"})
    with pytest.raises(ComposeError) as error:
        run_compose(kit, tmp_path / "out", "framework-w", "framework", platform="win_amd64",
                    runtime_archive=runtime)  # fmt: skip
    message = str(error.value)
    assert message.startswith("cpython-linux.tar.gz has no Windows venv launcher")
    assert f"python/{WINDOWS_LAUNCHERS}/python.exe" in message


def test_shared_libraries_exposed_extension_modules_not(kit, tmp_path):
    tree = make_tree(tmp_path / "tree", {
        f"{SITE}/torch/lib/libtorch.so": b"\x7fELF torch",
        f"{SITE}/torch/_C.cpython-311-x86_64-linux-gnu.so": b"\x7fELF ext",
        f"{SITE}/cv2/.libs/libpng16.so": b"\x7fELF png",
    })  # fmt: skip
    out = tmp_path / "out"
    run_compose(kit, out, "framework-x", "framework", wheels=[entry("torch", "1", tree)], dynlib_exclude=["cv2/*"])
    dynlib = out / "share/venv/dynlib"
    assert sorted(p.name for p in dynlib.iterdir()) == ["libtorch.so"]
    assert os.readlink(dynlib / "libtorch.so") == f"../../../{SITE}/torch/lib/libtorch.so"
    assert (dynlib / "libtorch.so").resolve() == (out / SITE / "torch/lib/libtorch.so").resolve()


def test_duplicate_shared_library_names_are_a_user_error(kit, tmp_path):
    tree = make_tree(tmp_path / "tree", {f"{SITE}/a/libz.so": b"\x7fELF a", f"{SITE}/b/libz.so": b"\x7fELF b"})
    with pytest.raises(UserError, match=r"two shared libraries named libz\.so.*dynlib_exclude"):
        run_compose(kit, tmp_path / "out", "framework-x", "framework", wheels=[entry("z", "1", tree)])


def test_duplicate_shared_library_names_fail_and_exclude_fixes_it(kit, tmp_path):
    tree = make_tree(tmp_path / "tree", {f"{SITE}/a/libz.so": b"\x7fELF a", f"{SITE}/b/libz.so": b"\x7fELF b"})
    with pytest.raises(Exception, match=r"two shared libraries named libz\.so.*dynlib_exclude"):
        run_compose(kit, tmp_path / "out", "framework-x", "framework", wheels=[entry("z", "1", tree)])
    out = tmp_path / "fixed"
    run_compose(kit, out, "framework-x", "framework", wheels=[entry("z", "1", tree)], dynlib_exclude=["b/libz.so"])
    assert (out / "share/venv/dynlib/libz.so").read_bytes() == b"\x7fELF a"


def test_import_names(tmp_path, wheels, kit):
    tree = tmp_path / "tree"
    tree.mkdir()
    install_wheel(wheels["wheel-0.45.1"], tree, kit.posix, "x86_64")
    assert import_names(tree, kit.posix) == ["wheel"]
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
    assert import_names(fake, kit.posix) == ["_fast", "fake", "solo"]


def test_recorded_symlinks_list_every_symlink_of_the_tree(tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python").write_text("wrapper")
    (tmp_path / "bin" / "python3").symlink_to("python")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "dir_link").symlink_to("../bin")
    assert recorded_symlinks(tmp_path) == {"bin/python3": "python", "lib/dir_link": "../bin"}
