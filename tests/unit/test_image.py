"""Tests for the image verb (stacktool.image, image_layer, image_oci): OCI layers, layouts, tarballs, base images.

The stack is real: the local runtime layer (conftest.published_runtime), a framework exposing two shared libraries
(one behind a chain of links) and two applications over it, composed and packed with the real verbs. It is deployed
with `deploy` (postinstall.py run by the runtime's python) at a directory used as the images' prefix too, so that
what the image step writes for the prefix can be compared with what postinstall.py wrote there.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest
from runtime_fixtures import make_fixture_runtime
from stacktool import image_oci
from stacktool.cli import main
from stacktool.contract import Module, Wheel, to_json
from stacktool.deploy import deploy
from stacktool.image import ImageLayer, LayoutConfig, write_layout, write_tarball
from stacktool.image_layer import BLOB, DESCRIPTOR, LayerImageConfig, prefix_parts, read_descriptor, write_layer
from stacktool.image_oci import ImageError, validate_layout
from stacktool.injected.postinstall import deployment_files
from stacktool.metadata import lower_layers, read_metadata

SITE = "lib/python3.11/site-packages"
ELF = b"\x7fELF" + bytes(60)
STACK = ("cpython3_11", "framework-libs")


def make_tree(root: Path, files: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    for rel, target in (links or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).symlink_to(target)
    return root


def tree_wheel(name: str, tree: Path) -> Wheel:
    return Wheel(name=name, version="1", filename=f"{name}-1-py3-none-any.whl", sha256="0" * 64, tree=str(tree))


def build_stack(kit, runtime, runtime_metadata: Path, work: Path, publish: Path, apps: list[str]) -> dict[str, Path]:
    """A framework with shared libraries (`pkg/libx.so` -> `libx.so.1`, `other.libs/liby.so`) over `runtime`, and
    applications over it: metadata files by install target, the runtime's included."""
    libs = make_tree(
        work / "libs-tree",
        {f"{SITE}/pkg/__init__.py": b"", f"{SITE}/pkg/libx.so.1": ELF, f"{SITE}/other.libs/liby.so": ELF},
        {f"{SITE}/pkg/libx.so": "libx.so.1"},
    )
    platform = read_metadata(runtime_metadata)["target_platform"]
    framework = kit.compose_config(
        "framework-libs", "framework", runtime=runtime, wheels=[tree_wheel("pkg", libs)], platform=platform
    )
    metadata = {"cpython3_11": runtime_metadata}
    metadata["framework-libs"] = kit.build_and_pack(framework, work, publish)[0]
    for app in apps:
        launch = make_tree(work / f"{app}-src", {f"{app}.py": f"print('{app} running')\n".encode()}) / f"{app}.py"
        config = kit.compose_config(
            f"app-{app}", "application", runtime=runtime, lower=["framework-libs", "cpython3_11"],
            modules=[Module(f"{app}.py", str(launch))], launch_module=app, platform=platform,
        )  # fmt: skip
        metadata[f"app-{app}"] = kit.build_and_pack(config, work, publish)[0]
    return metadata


def write_image_layers(metadata: dict[str, Path], prefix: str, out: Path) -> dict[str, Path]:
    """Runs the `image layer` step for every layer, lowest first, as the aspect of stack_image does."""
    dirs: dict[str, Path] = {}
    for target, path in metadata.items():
        published = read_metadata(path)
        lower = tuple(str(dirs[name]) for name in lower_layers(published))
        config = LayerImageConfig(str(path.parent / published["archive_name"]), target, prefix, lower)
        write_layer(config, out / target)
        dirs[target] = out / target
    return dirs


def layout_config(
    metadata: dict[str, Path], dirs: dict[str, Path], prefix: str, app: str, **changes: object
) -> LayoutConfig:
    stack = [*STACK, f"app-{app}"]
    fields = {
        "label": f"//stacks:{app}_image", "platform": read_metadata(metadata[stack[0]])["target_platform"],
        "prefix": prefix, "tag": "latest", "base": None, "env": {}, "cmd": (),
        "layers": tuple(ImageLayer(oci=str(dirs[name]), metadata=str(metadata[name])) for name in stack),
    }  # fmt: skip
    return LayoutConfig(**(fields | changes))


def blob_members(blob: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(blob, "r:gz") as tar:
        return {member.name: member for member in tar.getmembers()}


def blob_text(blob: Path, name: str) -> str:
    with tarfile.open(blob, "r:gz") as tar:
        member = tar.extractfile(name)
        assert member is not None, name
        return member.read().decode()


def manifest_of(layout: Path) -> dict:
    index = json.loads((layout / "index.json").read_text())
    return json.loads(image_oci.blob_path(layout, index["manifests"][0]["digest"]).read_bytes())


def config_of(layout: Path) -> dict:
    return json.loads(image_oci.blob_path(layout, manifest_of(layout)["config"]["digest"]).read_bytes())


@pytest.fixture(scope="module")
def stack(kit, published_runtime, tmp_path_factory) -> dict[str, Path]:
    runtime_metadata, runtime = published_runtime
    work, publish = tmp_path_factory.mktemp("image-stack"), tmp_path_factory.mktemp("image-published")
    return build_stack(kit, runtime, runtime_metadata, work, publish, ["one", "two"])


@pytest.fixture(scope="module")
def prefix(stack, tmp_path_factory) -> str:
    """A deployment of the stack by `deploy` (postinstall run by the runtime), at a path that is a valid prefix."""
    dest = tmp_path_factory.mktemp("image-deploy").resolve() / "opt" / "venvstacks"
    for app in ("app-one", "app-two"):
        deploy([stack["cpython3_11"], stack["framework-libs"], stack[app]], dest, incremental=True)
    return str(dest)


@pytest.fixture(scope="module")
def layers(stack, prefix, tmp_path_factory) -> dict[str, Path]:
    return write_image_layers(stack, prefix, tmp_path_factory.mktemp("image-layers"))


@pytest.fixture(scope="module")
def layouts(stack, layers, prefix, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("image-layouts")
    for app in ("one", "two"):
        write_layout(layout_config(stack, layers, prefix, app, cmd=("--verbose",)), out / app)
    return {app: out / app for app in ("one", "two")}


def test_image_layers_hold_what_postinstall_writes_at_the_prefix(layers, prefix):
    for target in ("framework-libs", "app-one", "app-two"):
        blob, deployed = layers[target] / BLOB, Path(prefix) / target
        top = f"{prefix.lstrip('/')}/{target}"
        for name in ("pyvenv.cfg", "share/venvstacks/library_path"):
            assert blob_text(blob, f"{top}/{name}") == (deployed / name).read_text(), (target, name)
        link = blob_members(blob)[f"{top}/bin/python_"]
        assert link.issym()
        assert link.linkname == os.readlink(deployed / "bin/python_") == "../../cpython3_11/bin/python3.11"
    libs = f"{prefix}/framework-libs/{SITE}"
    assert blob_text(layers["app-one"] / BLOB, f"{prefix.lstrip('/')}/app-one/share/venvstacks/library_path") == (
        f"{libs}/pkg:{libs}/other.libs\n"  # libx.so (through libx.so -> libx.so.1), then liby.so: by entry name
    )
    cfg = blob_text(layers["app-one"] / BLOB, f"{prefix.lstrip('/')}/app-one/pyvenv.cfg")
    assert f"home = {prefix}/cpython3_11/bin\n" in cfg
    assert "version = 3.11.7\n" in cfg  # the runtime's, from the layer's record: no Python of the target ran


def test_descriptor_reports_digests_and_the_real_libraries(layers, prefix):
    for target, directory in layers.items():
        descriptor = read_descriptor(directory)
        blob = directory / BLOB
        assert descriptor.digest == "sha256:" + hashlib.sha256(blob.read_bytes()).hexdigest()
        assert descriptor.diff_id == "sha256:" + hashlib.sha256(gzip.decompress(blob.read_bytes())).hexdigest()
        assert (descriptor.size, descriptor.media_type, descriptor.prefix) == (
            blob.stat().st_size, image_oci.LAYER_GZIP, prefix
        )  # fmt: skip
        assert descriptor.install_target == target
    libs = f"{prefix}/framework-libs/{SITE}"
    assert read_descriptor(layers["framework-libs"]).libraries == (
        f"{libs}/pkg/libx.so.1",
        f"{libs}/other.libs/liby.so",
    )
    assert read_descriptor(layers["app-one"]).libraries == ()


def test_shared_helper_and_postinstall_agree_on_posix_paths(tmp_path):
    record = {
        "runtime": "cpython3_11", "runtime_interpreter": "bin/python3.11", "env_name": "app-x",
        "lower": ["fw", "cpython3_11"],
        "venv_links": {"base_python": "bin/python_", "library_path": "share/venvstacks/library_path"},
    }  # fmt: skip
    libraries = {"fw": ["/p/fw/a/liba.so", "/p/fw/b/libb.so", "/p/fw/a/libc.so"], "cpython3_11": []}
    files, links = deployment_files(record, "/p/app-x", "3.11.7", libraries.__getitem__)
    assert links == {"bin/python_": "../../cpython3_11/bin/python3.11"}
    assert files["share/venvstacks/library_path"] == "/p/fw/a:/p/fw/b\n"
    assert files["pyvenv.cfg"].splitlines()[:2] == ["home = /p/cpython3_11/bin", "include-system-site-packages = false"]
    windows = dict(record, venv_links=None)
    assert list(deployment_files(windows, "/p/app-x", "3.11.7", libraries.__getitem__)[0]) == ["pyvenv.cfg"]


def test_layer_blobs_hold_only_their_layer_and_are_shared(layers, layouts, prefix):
    parts = prefix_parts(prefix)
    parents = {"/".join(parts[: i + 1]) for i in range(len(parts))}
    for target, directory in layers.items():
        names = set(blob_members(directory / BLOB))
        top = f"{prefix.lstrip('/')}/{target}"
        assert parents < names
        assert all(name in parents or name == top or name.startswith(top + "/") for name in names), target
    one, two = (manifest_of(layouts[app])["layers"] for app in ("one", "two"))
    assert one[:2] == two[:2]  # the runtime and the framework: the same blobs in both images
    assert one[2]["digest"] != two[2]["digest"]
    assert [layer["annotations"]["rules_venvstacks.layer"] for layer in one] == [*STACK, "app-one"]


def test_image_layer_is_reproducible(stack, layers, prefix, tmp_path):
    again = write_image_layers({name: stack[name] for name in (*STACK, "app-one")}, prefix, tmp_path)
    for target, directory in again.items():
        assert (directory / BLOB).read_bytes() == (layers[target] / BLOB).read_bytes(), target
        assert (directory / DESCRIPTOR).read_bytes() == (layers[target] / DESCRIPTOR).read_bytes(), target
    members = blob_members(again["app-one"] / BLOB).values()
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(315532800, 0, 0, "", "")}
    header = (again["app-one"] / BLOB).read_bytes()[:10]
    assert header[3] == 0 and header[4:8] == bytes(4)  # gzip: no file name, mtime 0


def test_layout_is_a_valid_oci_image(layouts, prefix):
    layout = layouts["one"]
    assert validate_layout(layout) == []
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((layout / "index.json").read_text())
    assert index["mediaType"] == image_oci.INDEX
    [entry] = index["manifests"]
    assert entry["platform"] == {"architecture": "amd64", "os": "linux"}
    assert entry["annotations"] == {"org.opencontainers.image.ref.name": "latest"}
    manifest = manifest_of(layout)
    assert (manifest["mediaType"], manifest["config"]["mediaType"]) == (image_oci.MANIFEST, image_oci.CONFIG)
    assert {layer["mediaType"] for layer in manifest["layers"]} == {image_oci.LAYER_GZIP}
    config = config_of(layout)
    assert config["config"]["Entrypoint"] == [f"{prefix}/app-one/bin/python", "-m", "one"]
    assert config["config"]["Cmd"] == ["--verbose"]
    assert config["config"]["Env"] == [
        f"PATH={prefix}/app-one/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    ]
    labels = config["config"]["Labels"]
    assert [layer["install_target"] for layer in json.loads(labels["rules_venvstacks.layers"])] == [*STACK, "app-one"]
    assert {key for layer in json.loads(labels["rules_venvstacks.layers"]) for key in layer} == {
        "install_target", "lock_version", "requirements_hash"
    }  # fmt: skip
    assert labels["rules_venvstacks.platform"] == "linux_x86_64"
    assert len(config["history"]) == len(config["rootfs"]["diff_ids"]) == 3
    blobs = sorted(p.name for p in (layout / "blobs" / "sha256").iterdir())
    assert blobs == sorted({d["digest"][7:] for d in [entry, manifest["config"], *manifest["layers"]]})


def test_validation_catches_tampering(layouts, tmp_path):
    layout = shutil.copytree(layouts["one"], tmp_path / "copy")
    manifest = manifest_of(layout)
    blob = image_oci.blob_path(layout, manifest["layers"][2]["digest"])
    data = bytearray(blob.read_bytes())
    data[-9] ^= 0xFF  # the end of the deflate stream
    blob.chmod(0o644)
    blob.write_bytes(bytes(data))
    problems = validate_layout(layout)
    assert any("is not valid application/vnd.oci.image.layer.v1.tar+gzip" in problem for problem in problems)
    blob.write_bytes(gzip.compress(b"not the layer", mtime=0))
    problems = validate_layout(layout)
    assert any("bytes, not" in problem for problem in problems)
    assert any(f"layer blob {manifest['layers'][2]['digest']} has digest sha256:" in problem for problem in problems)
    assert any("has diff_id" in problem for problem in problems)
    index = json.loads((layout / "index.json").read_text())
    del index["schemaVersion"]
    (layout / "index.json").chmod(0o644)
    (layout / "index.json").write_text(json.dumps(index))
    assert any("schemaVersion" in problem for problem in validate_layout(layout))


def test_layout_and_tarball_are_reproducible(stack, layers, layouts, prefix, tmp_path):
    write_layout(layout_config(stack, layers, prefix, "one", cmd=("--verbose",)), tmp_path / "again")
    files = sorted(p.relative_to(layouts["one"]).as_posix() for p in layouts["one"].rglob("*"))
    assert sorted(p.relative_to(tmp_path / "again").as_posix() for p in (tmp_path / "again").rglob("*")) == files
    for name in files:
        if (layouts["one"] / name).is_file():
            assert (tmp_path / "again" / name).read_bytes() == (layouts["one"] / name).read_bytes(), name
    write_tarball(layouts["one"], tmp_path / "a.tar")
    write_tarball(tmp_path / "again", tmp_path / "b.tar")
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    with tarfile.open(tmp_path / "a.tar") as tar:
        assert tar.getnames() == ["blobs", "blobs/sha256", *[f for f in files if f.startswith("blobs/sha256/")],
                                  "index.json", "oci-layout"]  # fmt: skip
        tar.extractall(tmp_path / "unpacked", filter="data")
    assert validate_layout(tmp_path / "unpacked") == []


def make_base(path: Path, architecture: str = "amd64", docker: bool = False, release: bytes = b"base\n") -> Path:
    """A small base image layout: one layer (etc/base-release), Env with PATH and LANG, a label, Cmd, history."""
    (path / "blobs" / "sha256").mkdir(parents=True)

    def store(data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        (path / "blobs" / "sha256" / digest).write_bytes(data)
        return "sha256:" + digest

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("etc/base-release")
        info.size = len(release)
        tar.addfile(info, io.BytesIO(release))
    layer = gzip.compress(raw.getvalue(), mtime=0)
    config = {
        "architecture": architecture, "os": "linux",
        "config": {"Env": ["PATH=/usr/bin:/bin", "LANG=C.UTF-8"], "Cmd": ["sh"], "Labels": {"base": "yes"},
                   "WorkingDir": "/work"},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()]},
        "history": [{"created_by": "base layer"}, {"created_by": "ENV LANG", "empty_layer": True}],
    }  # fmt: skip
    config_bytes = json.dumps(config).encode()
    types = (image_oci.DOCKER_MANIFEST, image_oci.DOCKER_CONFIG, "application/vnd.docker.image.rootfs.diff.tar.gzip")
    manifest_type, config_type, layer_type = (
        types if docker else (image_oci.MANIFEST, image_oci.CONFIG, image_oci.LAYER_GZIP)
    )
    manifest = {
        "schemaVersion": 2, "mediaType": manifest_type,
        "config": {"mediaType": config_type, "digest": store(config_bytes), "size": len(config_bytes)},
        "layers": [{"mediaType": layer_type, "digest": store(layer), "size": len(layer)}],
    }  # fmt: skip
    manifest_bytes = json.dumps(manifest).encode()
    entry = {"mediaType": manifest_type, "digest": store(manifest_bytes), "size": len(manifest_bytes)}
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return path


@pytest.mark.parametrize("docker", [False, True])
def test_base_image_goes_below_the_stack(stack, layers, prefix, tmp_path, docker):
    base = make_base(tmp_path / "base", docker=docker)
    config = layout_config(stack, layers, prefix, "one", base=str(base), env={"LANG": "C", "APP": "1"})
    write_layout(config, tmp_path / "image")
    assert validate_layout(tmp_path / "image") == []
    base_manifest = json.loads(
        image_oci.blob_path(base, json.loads((base / "index.json").read_text())["manifests"][0]["digest"]).read_bytes()
    )
    layers_written = manifest_of(tmp_path / "image")["layers"]
    assert layers_written[0]["digest"] == base_manifest["layers"][0]["digest"]
    assert layers_written[0]["mediaType"] == image_oci.LAYER_GZIP  # Docker's name for the same bytes, translated
    assert [layer["digest"] for layer in layers_written[1:]] == [
        read_descriptor(layers[n]).digest for n in (*STACK, "app-one")
    ]
    run = config_of(tmp_path / "image")
    assert run["config"]["Env"] == [f"PATH={prefix}/app-one/bin:/usr/bin:/bin", "LANG=C", "APP=1"]
    assert run["config"]["WorkingDir"] == "/work"
    assert "Cmd" not in run["config"]  # the base's Cmd was for its own entrypoint
    assert run["config"]["Labels"]["base"] == "yes"
    assert [h.get("created_by") for h in run["history"]][:2] == ["base layer", "ENV LANG"]
    assert len(run["history"]) == 5 and len(run["rootfs"]["diff_ids"]) == 4


def test_base_image_of_a_multi_platform_index(stack, layers, prefix, tmp_path):
    """A layout listing one image per platform (as `skopeo copy --all` writes them): the target platform's is used."""
    arm64_base = make_base(tmp_path / "arm64", architecture="arm64", release=b"arm64\n")
    arm64 = json.loads((arm64_base / "index.json").read_text())["manifests"]
    base = make_base(tmp_path / "base")
    amd64 = json.loads((base / "index.json").read_text())["manifests"]
    for blob in (tmp_path / "arm64" / "blobs" / "sha256").iterdir():
        shutil.copy(blob, base / "blobs" / "sha256" / blob.name)
    entries = [arm64[0] | {"platform": {"architecture": "arm64", "os": "linux"}}]
    entries.append(amd64[0] | {"platform": {"architecture": "amd64", "os": "linux"}})
    (base / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": entries}))
    write_layout(layout_config(stack, layers, prefix, "one", base=str(base)), tmp_path / "image")
    amd64_manifest, arm64_manifest = (
        json.loads(image_oci.blob_path(base, entry[0]["digest"]).read_bytes()) for entry in (amd64, arm64)
    )
    assert amd64_manifest["layers"][0]["digest"] != arm64_manifest["layers"][0]["digest"]
    assert manifest_of(tmp_path / "image")["layers"][0]["digest"] == amd64_manifest["layers"][0]["digest"]


def test_base_image_of_another_architecture_is_refused(stack, layers, prefix, tmp_path):
    base = make_base(tmp_path / "base", architecture="arm64")
    with pytest.raises(ImageError, match=r"for linux/arm64, not linux/amd64; use a base image of the target platform"):
        write_layout(layout_config(stack, layers, prefix, "one", base=str(base)), tmp_path / "image")


@pytest.mark.parametrize("target", ["win_amd64", "macosx_arm64"])
def test_images_are_linux_only(stack, layers, prefix, tmp_path, target):
    with pytest.raises(ImageError, match=rf"are Linux images, and {target} is not Linux"):
        write_layout(layout_config(stack, layers, prefix, "one", platform=target), tmp_path / "image")


def test_layers_of_another_stack_are_refused(stack, layers, prefix, tmp_path):
    config = layout_config(stack, layers, prefix, "one")
    swapped = dataclasses.replace(
        config, layers=(*config.layers[:2], ImageLayer(str(layers["app-two"]), str(stack["app-one"])))
    )
    with pytest.raises(ImageError, match="the image layer of app-one is app-two"):
        write_layout(swapped, tmp_path / "image")


@pytest.mark.parametrize("bad", ["opt/venvstacks", "/", "/opt/venvstacks/", "/opt/../etc", "/opt/my stack", "/opt:x"])
def test_prefix_must_be_a_plain_absolute_directory(bad):
    with pytest.raises(ImageError, match="must be an absolute directory"):
        prefix_parts(bad)


def test_whiteout_names_are_refused(kit, fixture_runtime, tmp_path):
    rogue = make_tree(tmp_path / "rogue", {f"{SITE}/pkg/.wh.secret": b"x"})
    config = kit.compose_config(
        "framework-rogue", "framework", runtime=fixture_runtime, wheels=[tree_wheel("rogue", rogue)]
    )
    metadata = kit.build_and_pack(config, tmp_path / "work", tmp_path)[0]
    archive = tmp_path / read_metadata(metadata)["archive_name"]
    with pytest.raises(ImageError, match=r"pkg/\.wh\.secret would be an OCI whiteout"):
        write_layer(LayerImageConfig(str(archive), "framework-rogue", "/opt/venvstacks", ()), tmp_path / "out")


def test_linux_aarch64_image_from_this_host(kit, tmp_path):
    """A cross-built stack (fixture runtime: no binary of it can run here) becomes an arm64 image all the same."""
    archive = make_fixture_runtime(tmp_path, "linux_aarch64")
    (tmp_path / "published").mkdir()
    runtime_config = kit.compose_config(
        "cpython3_11", "runtime", runtime_archive=archive, runtime_source_file=tmp_path / "runtime.json",
        platform="linux_aarch64",
    )  # fmt: skip
    runtime_metadata, runtime = kit.build_and_pack(runtime_config, tmp_path / "runtime", tmp_path / "published")
    metadata = build_stack(kit, runtime, runtime_metadata, tmp_path / "work", tmp_path / "published", ["one"])
    dirs = write_image_layers(metadata, "/opt/venvstacks", tmp_path / "layers")
    write_layout(layout_config(metadata, dirs, "/opt/venvstacks", "one"), tmp_path / "image")
    assert validate_layout(tmp_path / "image") == []
    assert config_of(tmp_path / "image")["architecture"] == "arm64"
    assert (
        json.loads((tmp_path / "image" / "index.json").read_text())["manifests"][0]["platform"]["architecture"]
        == "arm64"
    )
    cfg = blob_text(dirs["app-one"] / BLOB, "opt/venvstacks/app-one/pyvenv.cfg")
    assert "version = 3.11.99\n" in cfg and "home = /opt/venvstacks/cpython3_11/bin\n" in cfg


def test_cli_runs_each_step(stack, layers, prefix, tmp_path, capsys):
    published = read_metadata(stack["app-two"])
    config = LayerImageConfig(
        str(stack["app-two"].parent / published["archive_name"]), "app-two", prefix,
        (str(layers["framework-libs"]), str(layers["cpython3_11"])),
    )  # fmt: skip
    (tmp_path / "layer.json").write_text(to_json(config))
    assert main(["image", "layer", "--source", str(tmp_path / "layer.json"), "--out", str(tmp_path / "app")]) == 0
    assert (tmp_path / "app" / BLOB).read_bytes() == (layers["app-two"] / BLOB).read_bytes()
    windows = layout_config(stack, layers, prefix, "two", platform="win_amd64")
    (tmp_path / "layout.json").write_text(to_json(windows))
    assert main(["image", "layout", "--source", str(tmp_path / "layout.json"), "--out", str(tmp_path / "img")]) == 1
    assert "error: //stacks:two_image: OCI images of rules_venvstacks are Linux images" in capsys.readouterr().err
