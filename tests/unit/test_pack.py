"""Tests for stacktool.pack and stacktool.metadata: archives, metadata and its schema.

Layers are composed over `fixture_runtime`: their records carry the fixture archive's RuntimeSource, which is where
the metadata's `python` comes from.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from runtime_fixtures import make_fixture_runtime, pbs_triple
from stacktool.archive import ArchiveError, extract_archive, write_archive
from stacktool.compose import compose
from stacktool.contract import LAYER_RECORD, ContractError, Module, PackConfig, RuntimeRecord, read_json
from stacktool.metadata import (
    SCHEMA_PATH,
    MetadataError,
    lower_layers,
    metadata_version,
    read_metadata,
    validate,
    write_metadata,
)
from stacktool.pack import PackError, compose_and_pack, pack_layer
from stacktool.recompress import recompress_layer
from stacktool.sbom import sbom_path

SIX_SHA256 = "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254"


def sha256_hex(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def layer(kit, wheels, posix_trees, fixture_runtime, tmp_path) -> tuple[Path, Path, PackConfig]:
    """A composed framework layer with six over the fixture runtime, its pylock file and its pack config."""
    six = kit.wheel(wheels["six-1.16.0"], posix_trees["six-1.16.0"])
    cfg = kit.compose_config("framework-sci", "framework", runtime=fixture_runtime, wheels=[six])
    tree = tmp_path / "tree"
    tree.mkdir()
    compose(cfg, tree)
    pylock = tmp_path / "pylock.framework-sci.toml"
    pylock.write_text('lock-version = "1.0"\n', encoding="utf-8")
    return tree, pylock, kit.pack_config(pylock, "framework-sci")


def test_pack_layer_writes_archive_and_valid_metadata(layer, fixture_runtime, tmp_path):
    tree, pylock, config = layer
    archive, metadata_path = tmp_path / "framework-sci.tar.zst", tmp_path / "framework-sci.json"
    pack_layer(tree, archive, metadata_path, pylock, config, sbom_path(metadata_path))
    metadata = read_metadata(metadata_path)  # validates against the schema
    source = read_json(RuntimeRecord, fixture_runtime.record).source  # what the layer's record names
    assert (source.file, source.origin) == (
        f"cpython-3.11.99+fixture-{pbs_triple('linux_x86_64')}-install_only.tar.gz",
        "local",
    )
    assert metadata == {
        "metadata_version": 3,
        "layer_name": "framework-sci",
        "label": "//stacks:framework-sci",
        "install_target": "framework-sci",
        "lock_version": 1,
        "locked_at": "2026-11-30T12:00:00Z",
        "requirements_hash": "sha256:" + "0" * 64,
        "kind": "framework",
        "target_platform": "linux_x86_64",
        "python_implementation": "cpython@3.11.99",
        "bound_to_implementation": False,
        "runtime_archive": {"file": source.file, "sha256": source.sha256, "origin": "local"},
        "runtime_layer": "cpython3_11",
        "required_layers": [],
        "app_launch_module": None,
        "app_launch_module_hash": None,
        "app_support_modules": [],
        "packages": [
            {"name": "six", "version": "1.16.0", "wheel": "six-1.16.0-py2.py3-none-any.whl", "sha256": SIX_SHA256}
        ],
        "archive_name": "framework-sci.tar.zst",
        "archive_size": archive.stat().st_size,
        "archive_hashes": {"sha256": sha256_hex(archive)},
        "lock": {"file": "pylock.framework-sci.toml", "sha256": sha256_hex(pylock)},
    }
    assert metadata_path.read_text(encoding="utf-8") == json.dumps(metadata, indent=1, sort_keys=True) + "\n"
    # the archive holds the layer under its env_name, its recorded symlinks as symlinks
    out = tmp_path / "extracted"
    out.mkdir()
    top = extract_archive(archive, out, top="framework-sci")
    assert (top / "lib/python3.11/site-packages/six.py").read_bytes() == (
        tree / "lib/python3.11/site-packages/six.py"
    ).read_bytes()
    assert (top / LAYER_RECORD).read_bytes() == (tree / LAYER_RECORD).read_bytes()
    assert os.readlink(top / "bin" / "python3") == "python"
    assert os.access(top / "bin" / "python", os.X_OK)  # the runtime's wrapper, executable once unpacked


def test_metadata_comes_from_the_layer_record(kit, tmp_path):
    """layer_name, install target, kind, lower layers, launch and support modules with their hashes, packages and
    python come from the tree's record; label and the lock version, time and hash from the pack config."""
    archive = make_fixture_runtime(tmp_path, "linux_x86_64")
    renamed = archive.rename(tmp_path / f"cpython-3.11.4+custom-{pbs_triple('linux_x86_64')}-install_only.tar.gz")
    runtime = kit.compose_runtime(renamed, tmp_path / "runtime")
    src = tmp_path / "src"
    for rel, text in {"hello_app.py": "print('hi')\n", "util.py": "U = 1\n", "helpers/__init__.py": "",
                      "helpers/sub/x.py": "X = 1\n"}.items():  # fmt: skip
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(text, encoding="utf-8")
    modules = [Module(dest=rel, src=str(src / rel)) for rel in ("hello_app.py", "util.py", "helpers/__init__.py")]
    modules.append(Module(dest="helpers/sub/x.py", src=str(src / "helpers/sub/x.py")))
    cfg = kit.compose_config(
        "app-hello", "application", runtime=runtime, lower=["framework-sci@2", "cpython3_11"], modules=modules,
        launch_module="hello_app", support_modules=["helpers", "util"], install_target="app-hello@3",
    )  # fmt: skip
    tree = tmp_path / "app-hello"
    tree.mkdir()
    compose(cfg, tree)
    pylock = tmp_path / "pylock.app-hello.toml"
    pylock.write_text('lock-version = "1.0"\n', encoding="utf-8")
    config = dataclasses.replace(
        kit.pack_config(pylock, "app-hello"), label="//apps:hello", lock_version=3,
        locked_at="2025-01-02T03:04:05Z", requirements_hash="sha256:" + "ab" * 32,
    )  # fmt: skip
    pack_layer(tree, tmp_path / "a.tar.zst", tmp_path / "a.json", pylock, config, sbom_path(tmp_path / "a.json"))
    metadata = read_metadata(tmp_path / "a.json")
    assert metadata["python_implementation"] == "cpython@3.11.4"
    assert metadata["runtime_archive"] == {"file": renamed.name, "sha256": sha256_hex(renamed), "origin": "local"}
    assert (metadata["label"], metadata["layer_name"]) == ("//apps:hello", "app-hello")
    assert (metadata["install_target"], metadata["lock_version"]) == ("app-hello@3", 3)
    assert (metadata["locked_at"], metadata["requirements_hash"]) == ("2025-01-02T03:04:05Z", "sha256:" + "ab" * 32)
    assert (metadata["kind"], metadata["runtime_layer"]) == ("application", "cpython3_11")
    assert metadata["required_layers"] == ["framework-sci@2"]  # C3 order, the runtime apart (as in venvstacks)
    assert lower_layers(metadata) == ["framework-sci@2", "cpython3_11"]
    assert metadata["bound_to_implementation"] is False
    assert metadata["app_launch_module"] == "hello_app"  # the name; its hash beside it, as venvstacks publishes them
    assert metadata["app_launch_module_hash"] == kit.file_module_hash(src / "hello_app.py")
    assert metadata["app_support_modules"] == [
        {"name": "helpers", "hash": kit.package_module_hash(src / "helpers")},
        {"name": "util", "hash": kit.file_module_hash(src / "util.py")},
    ]
    assert metadata["packages"] == []  # a module is not a package
    out = tmp_path / "extracted"  # the archive's top directory is the install target
    out.mkdir()
    top = extract_archive(tmp_path / "a.tar.zst", out, top="app-hello@3")
    assert (top / "lib/python3.11/site-packages/helpers/sub/x.py").read_text(encoding="utf-8") == "X = 1\n"


@pytest.mark.parametrize("fmt", ["tar.gz", "zip"])
def test_pack_layer_is_deterministic(layer, tmp_path, fmt):
    tree, pylock, config = layer
    config = dataclasses.replace(config, archive_format=fmt)
    first, second = tmp_path / "a", tmp_path / "b"
    for out in (first, second):
        out.mkdir()
        pack_layer(tree, out / f"framework-sci.{fmt}", out / "m.json", pylock, config, sbom_path(out / "m.json"))
    assert (first / f"framework-sci.{fmt}").read_bytes() == (second / f"framework-sci.{fmt}").read_bytes()
    assert (first / "m.json").read_text() == (second / "m.json").read_text()
    assert read_metadata(first / "m.json")["archive_name"] == f"framework-sci.{fmt}"


def test_edited_pylock_is_refused(layer, tmp_path):
    tree, pylock, config = layer
    pylock.write_text('lock-version = "1.0"\n# edited by hand\n', encoding="utf-8")
    archive, metadata = tmp_path / "x.tar.zst", tmp_path / "x.json"
    with pytest.raises(PackError) as error:
        pack_layer(tree, archive, metadata, pylock, config, sbom_path(metadata))
    message = str(error.value)
    assert message.startswith("pylock.framework-sci.toml changed after //stacks:lock wrote the lock index")
    assert "`bazel run //stacks:lock`" in message
    assert not archive.exists()
    assert not metadata.exists()


def test_compose_and_pack_refuses_an_edited_lock_before_composing(kit, fixture_runtime, tmp_path):
    """The lock is checked first: a layer that could not even be composed (its launch module is nowhere) reports the
    edited lock file, and nothing is written."""
    cfg = kit.compose_config("app-hello", "application", runtime=fixture_runtime, launch_module="missing_app")
    pylock = tmp_path / "pylock.framework-sci.toml"
    pylock.write_text('lock-version = "1.0"\n', encoding="utf-8")
    config = kit.pack_config(pylock, "framework-sci")
    pylock.write_text('lock-version = "1.0"\n# edited by hand\n', encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(PackError, match=r"^pylock\.framework-sci\.toml changed after //stacks:lock"):
        compose_and_pack(cfg, config, out / "x.tar.zst", out / "x.json", pylock, out / "x.cdx.json")
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("fmt", ["tar.zst", "zip"])
@pytest.mark.parametrize("runtime", ["local", "linux_x86_64", "macosx_arm64", "win_amd64"])
def test_a_runtime_packed_from_memory_is_its_composed_tree_packed(
    kit, request, wheels, posix_trees, runtime, fmt, tmp_path
):
    """Pack keeps a runtime layer's files from its archive in memory (layer_files); the archive it writes is
    byte for byte the one written from the layer composed on disk (the compose verb's tree), a wheel included."""
    if runtime == "local":
        archive, platform = request.getfixturevalue("runtime_archive"), "linux_x86_64"
    else:
        archive, platform = make_fixture_runtime(tmp_path, runtime), runtime
    six = [kit.wheel(wheels["six-1.16.0"], posix_trees["six-1.16.0"])] if platform == "linux_x86_64" else []
    cfg = kit.compose_config(
        "cpython3_11",
        "runtime",
        runtime_archive=archive,
        runtime_source_file=tmp_path / "rt.json",
        platform=platform,
        wheels=six,
    )
    pylock = tmp_path / "pylock.cpython3_11.toml"
    pylock.write_text('lock-version = "1.0"\n', encoding="utf-8")
    config = dataclasses.replace(kit.pack_config(pylock, "cpython3_11"), archive_format=fmt)
    out = tmp_path / "out"
    out.mkdir()
    compose_and_pack(cfg, config, out / f"a.{fmt}", out / "a.json", pylock, out / "a.cdx.json")
    assert sorted(p.name for p in out.iterdir()) == sorted(["a.cdx.json", "a.json", f"a.{fmt}"])  # no scratch left
    tree = kit.compose_tree(cfg, tmp_path / "trees")
    write_archive(tree, tmp_path / f"b.{fmt}", top="cpython3_11", fmt=fmt)
    assert (out / f"a.{fmt}").read_bytes() == (tmp_path / f"b.{fmt}").read_bytes()


def test_record_of_another_version_is_refused(layer, tmp_path):
    """A tree whose layer record has another shape (here: the old `windows` field) is not packed."""
    tree, pylock, config = layer
    copy_ = tmp_path / "copy"
    shutil.copytree(tree, copy_, symlinks=True)  # new files: the composed tree's are hard links of shared trees
    record = json.loads((copy_ / LAYER_RECORD).read_text(encoding="utf-8"))
    record["windows"] = False
    (copy_ / LAYER_RECORD).unlink()
    (copy_ / LAYER_RECORD).write_text(json.dumps(record), encoding="utf-8")
    archive, metadata = tmp_path / "x.tar.zst", tmp_path / "x.json"
    with pytest.raises(ContractError) as error:
        pack_layer(copy_, archive, metadata, pylock, config, sbom_path(metadata))
    assert str(error.value).startswith(
        f"{copy_ / LAYER_RECORD}: LayerRecord fields differ (missing: -; unknown: windows)"
    )
    assert not archive.exists()
    assert not metadata.exists()


def test_env_name_with_dot_can_be_packed(kit, tmp_path):
    archive = make_fixture_runtime(tmp_path, "linux_x86_64")
    cfg = kit.compose_config("cpython3.11", "runtime", runtime_archive=archive)
    tree = tmp_path / "tree"
    tree.mkdir()
    compose(cfg, tree)
    pylock = tmp_path / "pylock.cpython3_11.toml"  # PEP 751 names have no dots: stack_lock writes this name
    pylock.write_text('lock-version = "1.0"\n', encoding="utf-8")
    pack_layer(
        tree,
        tmp_path / "a.tar.zst",
        tmp_path / "a.json",
        pylock,
        kit.pack_config(pylock, "cpython3.11"),
        sbom_path(tmp_path / "a.json"),
    )
    metadata = read_metadata(tmp_path / "a.json")
    assert (metadata["layer_name"], metadata["kind"], metadata["runtime_layer"]) == (
        "cpython3.11",
        "runtime",
        "cpython3.11",
    )
    assert (metadata["required_layers"], lower_layers(metadata)) == ([], [])
    assert (metadata["python_implementation"], metadata["bound_to_implementation"]) == ("cpython@3.11.99", True)
    assert metadata["runtime_archive"] == {
        "file": archive.name,
        "sha256": sha256_hex(archive),
        "origin": "local",
    }
    out = tmp_path / "extracted"
    out.mkdir()
    top = extract_archive(tmp_path / "a.tar.zst", out, top="cpython3.11")
    assert os.readlink(top / "bin" / "python3") == "python3.11"  # the runtime's own links, archived as links


# --------------------------------------------------------------------------------------------------
# metadata and schema


@pytest.fixture
def good(layer, tmp_path) -> dict[str, Any]:
    tree, pylock, config = layer
    pack_layer(tree, tmp_path / "g.tar.zst", tmp_path / "g.json", pylock, config, sbom_path(tmp_path / "g.json"))
    return json.loads((tmp_path / "g.json").read_text(encoding="utf-8"))


def mutated(doc: dict[str, Any], path: list[str | int], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    target = doc
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        (["archive_hashes", "sha256"], "ABC", "archive_hashes/sha256"),
        (["archive_hashes", "sha256"], "F" * 64, "archive_hashes/sha256"),  # upper case is not how hashes are written
        (["packages", 0, "sha256"], "0" * 63, "packages/0/sha256"),
        (["packages", 0, "wheel"], "six-1.16.0.tar.gz", "packages/0/wheel"),
        (["kind"], "library", "kind"),
        (["target_platform"], "linux_riscv64", "target_platform"),
        (["label"], "stacks:sci", "label"),
        (["python_implementation"], "cpython@3.11", "python_implementation"),
        (["bound_to_implementation"], "yes", "bound_to_implementation"),
        (["metadata_version"], 1, "metadata_version"),  # the old format is not read as the new one
        (["install_target"], "framework-sci@", "install_target"),
        (["install_target"], "framework-sci@2/..", "install_target"),
        (["layer_name"], "framework-sci@2", "layer_name"),  # the version belongs to the install target only
        (["lock_version"], 0, "lock_version"),
        (["lock_version"], "1", "lock_version"),
        (["requirements_hash"], "0" * 64, "requirements_hash"),
        (["app_launch_module_hash"], "sha256-" + "0" * 64, "app_launch_module_hash"),
        (["app_support_modules"], [{"name": "helpers"}], "app_support_modules/0"),
        (["app_support_modules"], [{"name": "helpers", "hash": "md5:0"}], "app_support_modules/0/hash"),
        (["locked_at"], KeyError, "(top)"),
        (["archive_name"], "framework-sci.rar", "archive_name"),
        (["archive_size"], -1, "archive_size"),
        (["archive_build"], 0, "archive_build"),
        (["lock", "file"], "requirements.txt", "lock/file"),
        (["layer_name"], "../escape", "layer_name"),
        (["extra"], "field", "(top)"),
        (["required_layers"], KeyError, "(top)"),
    ],
)
def test_schema_rejects_bad_documents(good, path, value, where):
    validate(good, "good.json")  # the unmodified document is fine
    bad = mutated(good, path, value)
    with pytest.raises(MetadataError) as error:
        validate(bad, "bad.json")
    message = str(error.value)
    assert message.startswith("bad.json does not match layer-metadata.schema.json: ")
    assert f"{where}: " in message


def test_metadata_version_is_the_schema_const():
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert metadata_version() == schema["properties"]["metadata_version"]["const"] == 3
    # the fields venvstacks publishes for every layer (docs/venvstacks-differences.md: archive_build comes from publish)
    venvstacks = {
        "layer_name", "install_target", "requirements_hash", "lock_version", "locked_at", "runtime_layer",
        "python_implementation", "bound_to_implementation", "required_layers", "app_launch_module",
        "app_launch_module_hash", "target_platform", "archive_name", "archive_size", "archive_hashes",
    }  # fmt: skip
    assert venvstacks <= set(schema["required"])


def test_write_metadata_refuses_invalid_documents(good, tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(MetadataError):
        write_metadata(mutated(good, ["archive_hashes", "sha256"], "nope"), target)
    assert not target.exists()
    write_metadata(good, target)
    assert read_metadata(target) == good


def test_read_metadata_names_the_file(good, tmp_path):
    path = tmp_path / "hand-edited.json"
    path.write_text(json.dumps(mutated(good, ["kind"], "plugin")), encoding="utf-8")
    with pytest.raises(MetadataError) as error:
        read_metadata(path)
    assert str(error.value).startswith(f"{path} does not match")


def test_recompress_layer_gives_the_new_archive_in_metadata_and_sbom(layer, tmp_path):
    tree, pylock, config = layer
    packed, release = tmp_path / "packed", tmp_path / "release"
    packed.mkdir()
    release.mkdir()
    name = "framework-sci-linux_x86_64"
    sbom = packed / f"{name}.cdx.json"
    pack_layer(tree, packed / f"{name}.tar.zst", packed / f"{name}.json", pylock, config, sbom)

    paths = [release / f"{name}.tar.zst", release / f"{name}.json", release / f"{name}.cdx.json"]
    recompress_layer(packed / f"{name}.tar.zst", packed / f"{name}.json", *paths)

    before, after = read_metadata(packed / f"{name}.json"), read_metadata(paths[1])
    new = {"archive_size": paths[0].stat().st_size, "archive_hashes": {"sha256": sha256_hex(paths[0])}}
    assert after == before | new
    assert new["archive_hashes"] != before["archive_hashes"]
    component = json.loads(paths[2].read_text())["metadata"]["component"]
    assert component["hashes"] == [{"alg": "SHA-256", "content": new["archive_hashes"]["sha256"]}]
    assert json.loads(paths[2].read_text())["components"] == json.loads(sbom.read_text())["components"]


def test_recompress_layer_keeps_the_archive_name(layer, tmp_path):
    tree, pylock, config = layer
    archive, metadata = tmp_path / "framework-sci-linux_x86_64.tar.zst", tmp_path / "framework-sci.json"
    pack_layer(tree, archive, metadata, pylock, config, sbom_path(metadata))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ArchiveError, match=r"must keep the name framework-sci-linux_x86_64\.tar\.zst"):
        recompress_layer(archive, metadata, out / "renamed.tar.zst", out / "m.json", out / "s.cdx.json")
    assert not list(out.iterdir())
