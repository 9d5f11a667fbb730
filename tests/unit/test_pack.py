"""Tests for stacktool.pack and stacktool.metadata: archives, metadata and its schema."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
from stacktool.archive import extract_archive
from stacktool.compose import compose
from stacktool.metadata import MetadataError, read_metadata, validate, write_metadata
from stacktool.pack import PackError, pack_layer

RUNTIME_INFO = {
    "file": "cpython-3.11.7+20240107-x86_64-unknown-linux-gnu-install_only.tar.gz",
    "origin": "https://example.invalid/cpython-3.11.7.tar.gz",
    "python_version": "3.11.7",
    "sha256": "e" * 64,
}


@pytest.fixture
def layer(kit, wheels, posix_trees, tmp_path) -> tuple[Path, Path, dict[str, Any]]:
    """A composed framework layer with six, its pylock file and its pack config."""
    six = kit.wheel_entry(wheels["six-1.16.0"], posix_trees["six-1.16.0"])
    cfg = kit.compose_config("framework-sci", "framework", wheels=[six])
    tree = tmp_path / "tree"
    tree.mkdir()
    compose(cfg, tree)
    pylock = tmp_path / "pylock.framework-sci.toml"
    pylock.write_text('lock-version = "1.0"\n', encoding="utf-8")
    runtime_info = tmp_path / "runtime.json"
    runtime_info.write_text(json.dumps(RUNTIME_INFO), encoding="utf-8")
    return tree, pylock, kit.pack_config(cfg, pylock, runtime_info)


def test_pack_layer_writes_archive_and_valid_metadata(layer, tmp_path, kit):
    tree, pylock, config = layer
    archive, metadata_path = tmp_path / "framework-sci.tar.zst", tmp_path / "framework-sci.json"
    pack_layer(tree, archive, metadata_path, pylock, config)
    metadata = read_metadata(metadata_path)  # validates against the schema
    assert metadata == {
        "metadata_version": 1,
        "layer_name": "framework-sci",
        "label": "//stacks:framework-sci",
        "env_name": "framework-sci",
        "kind": "framework",
        "platform": "linux_x86_64",
        "python": {
            "implementation": "cpython",
            "version": "3.11.7",
            "runtime_archive": {k: RUNTIME_INFO[k] for k in ("file", "sha256", "origin")},
        },
        "runtime_layer": "cpython3_11",
        "lower_layers": ["cpython3_11"],
        "launch_module": None,
        "packages": [
            {
                "name": "six",
                "version": "1.16.0",
                "wheel": "six-1.16.0-py2.py3-none-any.whl",
                "sha256": "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254",
            }
        ],
        "archive": {
            "name": "framework-sci.tar.zst",
            "format": "tar.zst",
            "sha256": hashlib.sha256(archive.read_bytes()).hexdigest(),
            "size": archive.stat().st_size,
        },
        "lock": {"file": "pylock.framework-sci.toml", "sha256": kit.sha256_file(pylock)},
    }
    assert metadata_path.read_text(encoding="utf-8") == json.dumps(metadata, indent=1, sort_keys=True) + "\n"
    # the archive holds the layer under its env_name
    out = tmp_path / "extracted"
    out.mkdir()
    top = extract_archive(archive, out, top="framework-sci")
    assert (top / "lib/python3.11/site-packages/six.py").read_bytes() == (
        tree / "lib/python3.11/site-packages/six.py"
    ).read_bytes()
    assert (top / "share/venvstacks/layer.json").is_file()


@pytest.mark.parametrize("fmt", ["tar.gz", "zip"])
def test_pack_layer_is_deterministic(layer, tmp_path, fmt):
    tree, pylock, config = layer
    config = config | {"archive_format": fmt}
    first, second = tmp_path / "a", tmp_path / "b"
    for out in (first, second):
        out.mkdir()
        pack_layer(tree, out / f"framework-sci.{fmt}", out / "m.json", pylock, config)
    assert (first / f"framework-sci.{fmt}").read_bytes() == (second / f"framework-sci.{fmt}").read_bytes()
    assert (first / "m.json").read_text() == (second / "m.json").read_text()
    assert read_metadata(first / "m.json")["archive"]["format"] == fmt


def test_edited_pylock_is_refused(layer, tmp_path):
    tree, pylock, config = layer
    pylock.write_text('lock-version = "1.0"\n# edited by hand\n', encoding="utf-8")
    archive, metadata = tmp_path / "x.tar.zst", tmp_path / "x.json"
    with pytest.raises(PackError) as error:
        pack_layer(tree, archive, metadata, pylock, config)
    message = str(error.value)
    assert message.startswith("pylock.framework-sci.toml changed after //stacks:lock wrote the lock index")
    assert "`bazel run //stacks:lock`" in message
    assert not archive.exists()
    assert not metadata.exists()


def test_env_name_with_dot_can_be_packed(kit, wheels, posix_trees, tmp_path):
    runtime = tmp_path / "runtime.tar.gz"
    with tarfile.open(runtime, "w:gz") as tf:
        info = tarfile.TarInfo("python/bin/python3.11")
        info.size = 10
        tf.addfile(info, io.BytesIO(b"#!/bin/sh\n"))
    cfg = kit.compose_config("cpython3.11", "runtime", runtime_archive=runtime)
    tree = tmp_path / "tree"
    tree.mkdir()
    compose(cfg, tree)
    pylock = tmp_path / "pylock.cpython3_11.toml"  # PEP 751 names have no dots: stack_lock writes this name
    pylock.write_text('lock-version = "1.0"\n', encoding="utf-8")
    runtime_info = tmp_path / "runtime.json"
    runtime_info.write_text(json.dumps(RUNTIME_INFO), encoding="utf-8")
    pack_layer(tree, tmp_path / "a.tar.zst", tmp_path / "a.json", pylock, kit.pack_config(cfg, pylock, runtime_info))
    assert read_metadata(tmp_path / "a.json")["env_name"] == "cpython3.11"


# --------------------------------------------------------------------------------------------------
# metadata and schema


@pytest.fixture
def good(layer, tmp_path) -> dict[str, Any]:
    tree, pylock, config = layer
    pack_layer(tree, tmp_path / "g.tar.zst", tmp_path / "g.json", pylock, config)
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
        (["archive", "sha256"], "ABC", "archive/sha256"),
        (["archive", "sha256"], "F" * 64, "archive/sha256"),  # upper case is not how hashes are written
        (["packages", 0, "sha256"], "0" * 63, "packages/0/sha256"),
        (["packages", 0, "wheel"], "six-1.16.0.tar.gz", "packages/0/wheel"),
        (["kind"], "library", "kind"),
        (["platform"], "linux_riscv64", "platform"),
        (["label"], "stacks:sci", "label"),
        (["python", "version"], "3.11", "python/version"),
        (["metadata_version"], 2, "metadata_version"),
        (["archive", "format"], "rar", "archive/format"),
        (["archive", "size"], -1, "archive/size"),
        (["lock", "file"], "requirements.txt", "lock/file"),
        (["env_name"], "../escape", "env_name"),
        (["extra"], "field", "(top)"),
        (["lower_layers"], KeyError, "(top)"),
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


def test_write_metadata_refuses_invalid_documents(good, tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(MetadataError):
        write_metadata(mutated(good, ["archive", "sha256"], "nope"), target)
    assert not target.exists()
    write_metadata(good, target)
    assert read_metadata(target) == good


def test_read_metadata_names_the_file(good, tmp_path):
    path = tmp_path / "hand-edited.json"
    path.write_text(json.dumps(mutated(good, ["kind"], "plugin")), encoding="utf-8")
    with pytest.raises(MetadataError) as error:
        read_metadata(path)
    assert str(error.value).startswith(f"{path} does not match")
