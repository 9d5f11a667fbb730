"""Tests for stacktool.deploy and the injected postinstall.py: a real stack on the local runtime.

The stack (conftest.published_stack) is composed and packed with the real verbs: a runtime layer from the local
python-build-standalone-like archive, a framework layer with six, an application layer with a launch module. Each
deployed layer carries its record (share/venvstacks/layer.json), which deploy and postinstall.py read.
"""

from __future__ import annotations

import ctypes.util
import dataclasses
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from runtime_fixtures import make_fixture_runtime
from stacktool.cli import main
from stacktool.compose import compose
from stacktool.contract import LAYER_RECORD, LayerRecord, Module, Wheel, read_json, to_json
from stacktool.deploy import DeployedLayer, DeployError, check, deploy, exclusive
from stacktool.metadata import MetadataError, lower_layers

SITE = "lib/python3.11/site-packages"
PROBE = "import json, six, sys; print(json.dumps({'prefix': sys.prefix, 'six': six.__file__, 'path': sys.path}))"


def probe(python: Path) -> dict:
    result = subprocess.run([str(python), "-c", PROBE], capture_output=True, text=True, env=clean_env())
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def clean_env() -> dict[str, str]:
    """The environment without anything that would point Python elsewhere."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "LD_LIBRARY_PATH"))}


def layer_names(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.iterdir())


def copy_published(published: list[Path], to: Path) -> list[Path]:
    """A private copy of the published archives and metadata (for tests that tamper with them)."""
    to.mkdir()
    copies = []
    for metadata in published:
        archive = metadata.parent / json.loads(metadata.read_text(encoding="utf-8"))["archive_name"]
        shutil.copy2(archive, to / archive.name)
        copies.append(Path(shutil.copy2(metadata, to / metadata.name)))
    return copies


@pytest.fixture(scope="module")
def deployed(published_stack, tmp_path_factory) -> tuple[Path, list[DeployedLayer]]:
    dest = tmp_path_factory.mktemp("deploy") / "with space ü" / "stack"
    return dest, deploy(published_stack, dest)


def test_deploy_unpacks_layers_side_by_side(deployed):
    dest, layers = deployed
    assert [layer.path for layer in layers] == [dest / "cpython3_11", dest / "framework-sci", dest / "app-hello"]
    assert layer_names(dest) == [
        ".app-hello.sha256", ".cpython3_11.sha256", ".framework-sci.sha256", "app-hello", "cpython3_11", "framework-sci"
    ]  # fmt: skip
    assert [layer.python for layer in layers] == [
        dest / "cpython3_11/bin/python3.11", dest / "framework-sci/bin/python", dest / "app-hello/bin/python"
    ]  # fmt: skip
    for layer in layers:
        marker = dest / f".{layer.metadata['layer_name']}.sha256"
        assert marker.read_text() == layer.metadata["archive_hashes"]["sha256"]
        record = layer.record  # the layer's own record, read from the deployed layer
        assert (record.env_name, record.kind, record.runtime) == (
            layer.metadata["layer_name"], layer.metadata["kind"], layer.metadata["runtime_layer"]
        )  # fmt: skip
        assert list(record.lower) == lower_layers(layer.metadata)
        assert layer.python == layer.path / record.interpreter
    assert [p.name for p in layers[1].record.packages] == ["six"]


def test_postinstall_writes_pyvenv_cfg_and_python_link(deployed):
    dest, _ = deployed
    framework = dest / "framework-sci"
    cfg = dict(line.split(" = ", 1) for line in (framework / "pyvenv.cfg").read_text(encoding="utf-8").splitlines())
    assert cfg["home"] == str(dest / "cpython3_11" / "bin")
    assert cfg["executable"] == str(dest / "cpython3_11" / "bin" / "python3.11")
    assert cfg["include-system-site-packages"] == "false"
    assert cfg["version"] == "3.11.7"
    assert cfg["venvstacks-layer"] == "framework-sci"
    assert os.readlink(framework / "bin" / "python_") == "../../cpython3_11/bin/python3.11"
    assert (framework / "share/venvstacks/library_path").read_text(encoding="utf-8") == "\n"  # no shared libs below
    assert not (dest / "cpython3_11" / "pyvenv.cfg").exists()  # the runtime is left as it is


def test_framework_python_runs_in_its_own_prefix(deployed):
    dest, _ = deployed
    framework = dest / "framework-sci"
    for python in ("python", "python3", "python3.11"):
        info = probe(framework / "bin" / python)
        assert Path(info["prefix"]) == framework, python
        assert Path(info["six"]) == framework / SITE / "six.py"
    # the runtime's site-packages comes after the layer's own
    path = info["path"]
    own, runtime = str(framework / SITE), str(dest / "cpython3_11" / SITE)
    assert own in path
    assert runtime in path
    assert path.index(own) < path.index(runtime)


def test_deployed_layers_carry_venvstacks_layer_config(deployed):
    """share/venv/metadata/venvstacks_layer.json, read with the field names venvstacks documents: every path it
    names, relative to the deployed layer, is there."""
    dest, layers = deployed
    configs = {
        layer.path.name: json.loads((layer.path / "share/venv/metadata/venvstacks_layer.json").read_text())
        for layer in layers
    }
    version = layers[0].metadata["python_implementation"].removeprefix("cpython@")
    assert configs["cpython3_11"] == {
        "python": "bin/python3.11", "py_version": version, "base_python": "bin/python3.11", "site_dir": SITE,
        "pylib_dirs": [], "dynlib_dirs": [],
    }  # fmt: skip
    assert configs["app-hello"] == {
        "python": "bin/python", "py_version": version, "base_python": "../cpython3_11/bin/python3.11",
        "site_dir": SITE, "pylib_dirs": [f"../framework-sci/{SITE}", f"../cpython3_11/{SITE}"],
        "dynlib_dirs": ["../framework-sci/share/venv/dynlib"], "launch_module": "hello_app",
    }  # fmt: skip
    for layer in layers:
        config = configs[layer.path.name]
        assert (layer.path / config["python"]).is_file()
        assert (layer.path / config["base_python"]).resolve() == (dest / "cpython3_11/bin/python3.11").resolve()
        assert (layer.path / config["site_dir"]).is_dir()
        assert all((layer.path / d).is_dir() for d in config["pylib_dirs"])


def test_application_sees_lower_layers_in_order(deployed):
    dest, _ = deployed
    app = dest / "app-hello"
    info = probe(app / "bin" / "python")
    assert Path(info["prefix"]) == app
    assert Path(info["six"]) == dest / "framework-sci" / SITE / "six.py"  # six comes from the framework
    entries = [str(app / SITE), str(dest / "framework-sci" / SITE), str(dest / "cpython3_11" / SITE)]
    assert [info["path"].index(e) for e in entries] == sorted(info["path"].index(e) for e in entries)
    result = subprocess.run(
        [str(app / "bin/python"), "-m", "hello_app", "a b", "ü"], capture_output=True, text=True, env=clean_env()
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"hello from {app}",
        f"six 1.16.0 from {dest / 'framework-sci' / SITE / 'six.py'}",
        "args ['a b', 'ü']",
    ]


def test_check_imports_every_package_and_runs_the_launch_module(deployed, capsys):
    _, layers = deployed
    assert check(layers, ["--flag"]) == []
    out = capsys.readouterr().out
    assert "import six: ok" in out
    assert "python -m hello_app: exit 0" in out
    assert "args ['--flag']" in out


def test_check_reports_failures(deployed, tmp_path):
    """check() on a layer whose package is broken reports it (deployed copy, so the shared one stays intact)."""
    dest, layers = deployed
    copy = tmp_path / "copy"
    shutil.copytree(dest, copy, symlinks=True)
    (copy / "framework-sci" / SITE / "six.py").write_text("raise ImportError('broken on purpose')\n")
    subprocess.run(
        [str(copy / "cpython3_11/bin/python3.11"), "-I", str(copy / "framework-sci/postinstall.py")], check=True
    )
    subprocess.run([str(copy / "cpython3_11/bin/python3.11"), "-I", str(copy / "app-hello/postinstall.py")], check=True)
    moved = [DeployedLayer(copy / layer.path.name, layer.metadata) for layer in layers]
    failures = check(moved, [])
    assert len(failures) == 2
    assert failures[0].startswith("import six in app-hello:")
    assert "broken on purpose" in failures[0]
    assert failures[1].startswith("launch module hello_app exited with 1:")


def test_moved_deployment_works_after_postinstall(published_stack, tmp_path):
    first = tmp_path / "first place"
    deploy(published_stack, first)
    moved = tmp_path / "elsewhere ü" / "moved"
    moved.parent.mkdir()
    shutil.move(first, moved)
    assert not first.exists()
    runtime_python = moved / "cpython3_11" / "bin" / "python3.11"
    for layer in ("cpython3_11", "framework-sci", "app-hello"):  # as postinstall.py's docstring says
        result = subprocess.run(
            [str(runtime_python), str(moved / layer / "postinstall.py")],
            capture_output=True,
            text=True,
            env=clean_env(),
        )
        assert result.returncode == 0, result.stderr
    for layer in ("framework-sci", "app-hello"):
        info = probe(moved / layer / "bin" / "python")
        assert Path(info["prefix"]) == moved / layer
        assert Path(info["six"]) == moved / "framework-sci" / SITE / "six.py"
        assert str(first) not in (moved / layer / "pyvenv.cfg").read_text(encoding="utf-8")


def test_moved_deployment_redeployed_incrementally(published_stack, tmp_path):
    first = tmp_path / "a"
    deploy(published_stack, first)
    moved = tmp_path / "b"
    shutil.move(first, moved)
    sentinel = moved / "framework-sci" / "sentinel"
    sentinel.write_text("kept")
    layers = deploy(published_stack, moved, incremental=True)  # unchanged archives: only postinstall runs
    assert sentinel.read_text() == "kept"
    info = probe(layers[-1].python)
    assert Path(info["prefix"]) == moved / "app-hello"


def test_incremental_deploy_skips_unchanged_layers(published_stack, tmp_path):
    dest = tmp_path / "dest"
    deploy(published_stack, dest)
    sentinels = [dest / name / "sentinel" for name in ("cpython3_11", "framework-sci")]
    for sentinel in sentinels:
        sentinel.write_text("still here")
    inode = (dest / "cpython3_11/bin/python3.11").stat().st_ino
    deploy(published_stack, dest, incremental=True)
    assert all(s.read_text() == "still here" for s in sentinels)
    assert (dest / "cpython3_11/bin/python3.11").stat().st_ino == inode
    # a layer whose marker no longer matches is unpacked again, the others are kept
    (dest / ".framework-sci.sha256").write_text("0" * 64)
    deploy(published_stack, dest, incremental=True)
    assert sentinels[0].exists()
    assert not sentinels[1].exists()
    # a full deploy unpacks every layer again
    deploy(published_stack, dest)
    assert not sentinels[0].exists()
    assert probe(dest / "framework-sci/bin/python")["prefix"] == str(dest / "framework-sci")


def test_tampered_runtime_archive_extracts_nothing(published_stack, tmp_path):
    copies = copy_published(published_stack, tmp_path / "published")
    archive = tmp_path / "published" / json.loads(copies[0].read_text())["archive_name"]
    with archive.open("ab") as stream:
        stream.write(b"\0")
    dest = tmp_path / "dest"
    with pytest.raises(DeployError) as error:
        deploy(copies, dest)
    message = str(error.value)
    assert message.startswith(f"{archive} has sha256 ")
    assert f"but {copies[0]} says " in message
    assert list(dest.iterdir()) == []


def test_tampered_upper_archive_leaves_no_partial_layer_and_keeps_a_good_one(published_stack, tmp_path):
    copies = copy_published(published_stack, tmp_path / "published")
    dest = tmp_path / "dest"
    deploy(copies, dest)
    archive = tmp_path / "published" / json.loads(copies[1].read_text())["archive_name"]
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    with pytest.raises(DeployError, match=r"/framework-sci-linux_x86_64\.tar\.zst has sha256 "):
        deploy(copies, dest)
    # the layer deployed before is untouched (the check comes before anything is removed)
    assert (dest / "framework-sci" / SITE / "six.py").is_file()
    assert (dest / ".framework-sci.sha256").exists()
    assert not any(".partial" in name for name in layer_names(dest))


def test_missing_archive(published_stack, tmp_path):
    copies = copy_published(published_stack, tmp_path / "published")
    archive = tmp_path / "published" / json.loads(copies[0].read_text())["archive_name"]
    archive.unlink()
    with pytest.raises(DeployError) as error:
        deploy(copies, tmp_path / "dest")
    assert str(error.value) == f"{archive} is missing; {copies[0]} names it: copy the archive next to it"


def test_stack_without_runtime_is_refused(published_stack, tmp_path):
    with pytest.raises(DeployError, match="no runtime layer among the archives to deploy"):
        deploy(published_stack[1:], tmp_path / "dest")


def test_invalid_metadata_is_refused(published_stack, tmp_path):
    copies = copy_published(published_stack, tmp_path / "published")
    metadata = json.loads(copies[0].read_text())
    metadata["archive_hashes"]["sha256"] = "not a hash"
    copies[0].write_text(json.dumps(metadata))
    with pytest.raises(MetadataError, match="archive_hashes/sha256"):
        deploy(copies, tmp_path / "dest")


def test_postinstall_without_runtime_fails_clearly(deployed, tmp_path):
    dest, _ = deployed
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    shutil.copytree(dest / "framework-sci", lonely / "framework-sci", symlinks=True)
    result = subprocess.run(
        [str(dest / "cpython3_11/bin/python3.11"), str(lonely / "framework-sci/postinstall.py")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "postinstall: framework-sci: runtime layer 'cpython3_11' not found next to it" in result.stderr


def test_postinstall_follows_the_layer_record(deployed, tmp_path):
    """postinstall.py writes the venv links only where the record asks for them (not for Windows layers, whose
    record has no venv_links), and finds the runtime through the record's runtime and runtime_interpreter."""
    dest, _ = deployed
    root = tmp_path / "root"
    root.mkdir()
    (root / "cpython3_11").symlink_to(dest / "cpython3_11")  # the runtime as it was deployed
    layer = root / "framework-sci"
    shutil.copytree(dest / "framework-sci", layer, symlinks=True)
    for written in ("bin/python_", "share/venvstacks/library_path", "pyvenv.cfg"):
        (layer / written).unlink()
    record = read_json(LayerRecord, layer / LAYER_RECORD)
    assert record.venv_links is not None
    windows_like = dataclasses.replace(record, venv_links=None, runtime_interpreter="bin/python3")
    (layer / LAYER_RECORD).write_text(to_json(windows_like), encoding="utf-8")
    result = subprocess.run(
        [str(dest / "cpython3_11/bin/python3.11"), "-I", str(layer / "postinstall.py")],
        capture_output=True,
        text=True,
        env=clean_env(),
    )
    assert result.returncode == 0, result.stderr
    cfg = dict(line.split(" = ", 1) for line in (layer / "pyvenv.cfg").read_text(encoding="utf-8").splitlines())
    assert cfg["executable"] == str(root / "cpython3_11" / "bin" / "python3")  # the record's runtime_interpreter
    assert cfg["home"] == str(root / "cpython3_11" / "bin")
    assert cfg["venvstacks-layer"] == "framework-sci"
    assert not (layer / "bin/python_").is_symlink()
    assert not (layer / "share/venvstacks/library_path").exists()


def test_python_of_a_windows_layer_comes_from_its_record(kit, tmp_path):
    """DeployedLayer.python is the record's interpreter: Scripts/python.exe for a Windows layer."""
    runtime = kit.compose_runtime(make_fixture_runtime(tmp_path, "win_amd64"), tmp_path / "rt", platform="win_amd64")
    layer = tmp_path / "framework-w"
    layer.mkdir()
    compose(kit.compose_config("framework-w", "framework", runtime=runtime, platform="win_amd64"), layer)
    assert DeployedLayer(layer, {}).python == layer / "Scripts" / "python.exe"
    assert DeployedLayer(runtime.tree, {}).python == runtime.tree / "python.exe"


@pytest.mark.skipif(os.name != "posix", reason="runs are serialized with flock on POSIX only")
def test_exclusive_holds_a_lock_next_to_the_deploy_dir(tmp_path):
    import fcntl

    deploy_dir = tmp_path / "runs" / "app-hello-0123456789abcdef"
    lock = tmp_path / "runs" / ".app-hello-0123456789abcdef.lock"

    def try_lock() -> bool:
        with lock.open("w") as other:  # another open file description: flock treats it as another process would
            try:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            fcntl.flock(other, fcntl.LOCK_UN)
            return True

    with exclusive(deploy_dir):
        assert lock.is_file()
        assert not deploy_dir.exists()  # deploy creates it; the lock only needs its parent
        assert not try_lock()
    assert try_lock()
    with exclusive(deploy_dir):  # and it can be taken again
        assert not try_lock()


def real_shared_library() -> Path | None:
    """A real ELF shared library of the host to stand in for a wheel's bundled library (zlib)."""
    found = ctypes.util.find_library("z")
    for directory in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/usr/lib"):
        if found and (Path(directory) / found).exists():
            return (Path(directory) / found).resolve()
    return None


def test_upper_layer_loads_shared_library_of_lower_layer(published_runtime, kit, tmp_path):
    """A library in a framework's site-packages is loadable by name from the application above it (dynlib)."""
    libz = real_shared_library()
    if libz is None:
        pytest.skip("no zlib shared library on this host")
    tree = tmp_path / "native-tree"
    (tree / SITE / "native" / "lib").mkdir(parents=True)
    (tree / SITE / "native" / "__init__.py").write_text("")
    shutil.copyfile(libz, tree / SITE / "native" / "lib" / "libvstest_z.so")
    native = Wheel(
        name="native", version="1.0", filename="native-1.0-py3-none-any.whl", sha256="0" * 64, tree=str(tree)
    )
    runtime_metadata, runtime = published_runtime
    configs = [
        kit.compose_config("framework-native", "framework", runtime=runtime, wheels=[native]),
        kit.compose_config("app-native", "application", runtime=runtime, lower=["framework-native", "cpython3_11"]),
    ]
    publish = tmp_path / "published"
    publish.mkdir()
    metadata = [kit.build_and_pack(cfg, tmp_path / "build", publish)[0] for cfg in configs]
    dest = tmp_path / "dest ü"
    layers = deploy([runtime_metadata, *metadata], dest)
    assert layers[1].record.dynlib_dir == "share/venv/dynlib"

    lib_dir = dest / "framework-native" / SITE / "native" / "lib"
    assert os.readlink(dest / "framework-native/share/venv/dynlib/libvstest_z.so") == (
        f"../../../{SITE}/native/lib/libvstest_z.so"
    )
    assert (dest / "app-native/share/venvstacks/library_path").read_text(encoding="utf-8") == f"{lib_dir}\n"
    code = (
        "import ctypes\n"
        "lib = ctypes.CDLL('libvstest_z.so')\n"
        "lib.zlibVersion.restype = ctypes.c_char_p\n"
        "print(lib.zlibVersion().decode())\n"
    )
    app = subprocess.run(
        [str(dest / "app-native/bin/python"), "-c", code], capture_output=True, text=True, env=clean_env()
    )
    assert app.returncode == 0, app.stderr
    assert app.stdout.startswith("1.")
    # the framework itself has no lower layer exposing it: loading by name fails there
    framework = subprocess.run(
        [str(dest / "framework-native/bin/python"), "-c", code], capture_output=True, text=True, env=clean_env()
    )
    assert framework.returncode != 0
    assert "libvstest_z.so" in framework.stderr


SIX_MODULE = "import six\n\nprint(six.__version__, six.__file__)\n"


def test_versioned_layers_deploy_side_by_side_as_their_install_targets(
    runtime_archive, kit, wheels, posix_trees, tmp_path, capsys
):
    """Layers deploy into directories named by their install targets (`env_name@N` for versioned layers); layers
    find their runtime and lower layers by install target, so two versions of a stack deploy next to each other."""
    runtime_cfg = kit.compose_config(
        "cpython3_11", "runtime", runtime_archive=runtime_archive, runtime_source_file=tmp_path / "runtime.json",
        install_target="cpython3_11@3",
    )  # fmt: skip
    (tmp_path / "published").mkdir()
    runtime_metadata, runtime = kit.build_and_pack(runtime_cfg, tmp_path / "build-runtime", tmp_path / "published")
    assert runtime is not None
    module = tmp_path / "show_six.py"
    module.write_text(SIX_MODULE, encoding="utf-8")
    metadata = [runtime_metadata]
    for version, six in ((1, "six-1.16.0"), (2, "six-1.17.0")):
        framework = kit.compose_config(
            "framework-sci", "framework", runtime=runtime, wheels=[kit.wheel(wheels[six], posix_trees[six])],
            install_target=f"framework-sci@{version}", lower=["cpython3_11@3"],
        )  # fmt: skip
        app = kit.compose_config(
            "app-hello", "application", runtime=runtime, install_target=f"app-hello@{version}",
            lower=[f"framework-sci@{version}", "cpython3_11@3"], modules=[Module("show_six.py", str(module))],
            launch_module="show_six",
        )  # fmt: skip
        publish = tmp_path / f"published-{version}"
        publish.mkdir()
        for config in (framework, app):
            config = dataclasses.replace(config, runtime="cpython3_11@3")
            metadata.append(kit.build_and_pack(config, tmp_path / f"build-{version}", publish)[0])

    dest = tmp_path / "dest"
    assert main(["deploy", "--to", str(dest), *map(str, metadata)]) == 0
    targets = ["cpython3_11@3", "framework-sci@1", "app-hello@1", "framework-sci@2", "app-hello@2"]
    assert capsys.readouterr().out.splitlines() == [f"deployed {target} -> {dest / target}" for target in targets]
    assert layer_names(dest) == sorted([*targets, *(f".{target}.sha256" for target in targets)])
    assert os.readlink(dest / "app-hello@2" / "bin" / "python_") == "../../cpython3_11@3/bin/python3.11"
    for version, six in ((1, "1.16.0"), (2, "1.17.0")):
        app = dest / f"app-hello@{version}"
        result = subprocess.run(
            [str(app / "bin" / "python"), "-m", "show_six"], capture_output=True, text=True, env=clean_env()
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"{six} {dest / f'framework-sci@{version}' / SITE / 'six.py'}\n"

    # the runtime is found by its install target, not by its env_name
    copies = copy_published([runtime_metadata, metadata[1]], tmp_path / "copies")
    framework_metadata = json.loads(copies[1].read_text(encoding="utf-8"))
    copies[1].write_text(json.dumps(framework_metadata | {"runtime_layer": "cpython3_11"}), encoding="utf-8")
    with pytest.raises(DeployError) as error:
        deploy(copies, tmp_path / "elsewhere")
    assert str(error.value) == "framework-sci@1 needs runtime layer cpython3_11"


# --------------------------------------------------------------------------------------------------
# check: extra and skipped imports, optional dependencies no layer installs


def test_check_imports_extra_modules_and_not_skipped_ones(deployed, capsys):
    _, layers = deployed
    failures = check(
        layers, [], extra_imports=["json.decoder", "no_such_module"], skip_imports=["six", "no_such_module"]
    )
    assert failures == []
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if line.startswith("import ")] == ["import json.decoder: ok"]
    assert not [line for line in lines if line.startswith("note:")]
    assert "python -m hello_app: exit 0" in lines


def test_check_fails_for_an_extra_import_that_is_missing_itself(deployed, capsys):
    """A module asked for that does not exist is a failure, not an optional dependency."""
    _, layers = deployed
    failures = check(layers, [], extra_imports=["no_such_module", "json.no_such_part"])
    assert [failure.splitlines()[0] for failure in failures] == [
        "import json.no_such_part in app-hello:",
        "import no_such_module in app-hello:",
    ]
    assert "ModuleNotFoundError: No module named 'json.no_such_part'" in failures[0]
    assert "ModuleNotFoundError: No module named 'no_such_module'" in failures[1]
    out = capsys.readouterr().out
    assert "import no_such_module: FAILED" in out
    assert "import json.no_such_part: FAILED" in out
    assert "note:" not in out


# A distribution of top-level modules: one needs a module no layer installs (an optional dependency), the others fail
# for a module the stack provides (a broken stack) or for another ImportError.
OPTIONAL_TREE = {
    "optional_thing.py": b"import not_installed_anywhere\n",
    "broken_thing.py": b"import opt_helpers.not_there\n",
    "raising_thing.py": b"from json import not_there\n",  # an ImportError naming json, which no layer provides
    "opt_helpers/__init__.py": b"",
}


@pytest.fixture(scope="module")
def optional_stack(published_runtime, kit, wheels, posix_trees, tmp_path_factory) -> list[DeployedLayer]:
    """The runtime and a framework with six and OPTIONAL_TREE, deployed."""
    work = tmp_path_factory.mktemp("optional-stack")
    tree = work / "opt-tree"
    files = {f"{SITE}/{name}": data for name, data in OPTIONAL_TREE.items()}
    record = "".join(f"{name},,\n" for name in [*OPTIONAL_TREE, "opt_things-1.0.dist-info/RECORD"])
    files[f"{SITE}/opt_things-1.0.dist-info/RECORD"] = record.encode()
    for relative, data in files.items():
        (tree / relative).parent.mkdir(parents=True, exist_ok=True)
        (tree / relative).write_bytes(data)
    opt = Wheel(name="opt-things", version="1.0", filename="opt_things-1.0-py3-none-any.whl", sha256="0" * 64,
                tree=str(tree))  # fmt: skip
    six = kit.wheel(wheels["six-1.16.0"], posix_trees["six-1.16.0"])
    runtime_metadata, runtime = published_runtime
    publish = work / "published"
    publish.mkdir()
    config = kit.compose_config("framework-opt", "framework", runtime=runtime, wheels=[six, opt])
    metadata, _ = kit.build_and_pack(config, work / "build", publish)
    return deploy([runtime_metadata, metadata], work / "deployed")


def test_check_notes_a_missing_optional_dependency_and_fails_a_broken_stack(optional_stack, capsys):
    layers = optional_stack
    assert [p.import_names for p in layers[1].record.packages] == [
        ("six",),
        ("broken_thing", "opt_helpers", "optional_thing", "raising_thing"),
    ]
    failures = check(layers, [])
    assert capsys.readouterr().out.splitlines() == [
        "import broken_thing: FAILED",
        "import opt_helpers: ok",
        "import optional_thing: skipped",
        "import raising_thing: FAILED",
        "import six: ok",
        "note: optional_thing needs not_installed_anywhere, which no layer installs (an optional dependency): "
        "not checked",
    ]
    assert [failure.splitlines()[0] for failure in failures] == [
        "import broken_thing in framework-opt:",  # opt_helpers is the stack's: its missing part is a broken stack
        "import raising_thing in framework-opt:",  # an ImportError that is no missing module
    ]
    assert "ModuleNotFoundError: No module named 'opt_helpers.not_there'" in failures[0]
    assert "ImportError: cannot import name 'not_there' from 'json'" in failures[1]


def test_check_with_only_a_missing_optional_dependency_passes(optional_stack, capsys):
    failures = check(optional_stack, [], skip_imports=["broken_thing", "raising_thing"])
    assert failures == []
    lines = capsys.readouterr().out.splitlines()
    assert "import optional_thing: skipped" in lines
    assert any(line.startswith("note: optional_thing needs not_installed_anywhere") for line in lines)
    assert not [line for line in lines if "broken_thing" in line or "raising_thing" in line]
