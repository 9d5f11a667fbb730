"""stack_image end to end: the two apps of examples/sklearn as OCI images, from two checkouts at different paths.

Checked here: the runtime and framework layer blobs of both images are the same (digests), the two checkouts give
byte-identical layouts and tarballs, each layout is a valid OCI image (media types, digests, sizes, diff_ids,
schemas) that skopeo reads (directory and tarball) and umoci unpacks; the app runs from the unpacked root file
system (bubblewrap, with this host's /usr for glibc and bash), and from an image over a base image that holds
exactly the host's system libraries it needs, hermetically and with a container runtime (runc) where one works.
A linux_aarch64 image is built from this x86_64 host (layout-faithful fixture runtime): validated, not run.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import BAZEL, EXAMPLES, WORKSPACES, Workspace, copy_workspace
from runtime_fixtures import make_fixture_runtime
from stacktool.digest import sha256_of
from stacktool.image_oci import validate_layout

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
PREFIX = "/opt/venvstacks"
IMAGES = ("classify_image", "cluster_image")
EXPECTED_OUTPUT = {"classify_image": "test accuracy", "cluster_image": "3 clusters, sizes"}


def ensure_tools(*tools: str) -> None:
    """skopeo and umoci (and runc) come from Debian: installed when absent, else the test skips saying why."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing and shutil.which("apt-get"):
        env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", *missing], env=env, capture_output=True)
    still = [tool for tool in tools if shutil.which(tool) is None]
    if still:
        pytest.skip(f"{', '.join(still)} not installed and `apt-get install` could not install it")


def bin_dir(ws: Workspace) -> Path:
    return ws.path / "bazel-bin" / "stacks"


@pytest.fixture(scope="module")
def checkouts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, Workspace]]:
    """examples/sklearn in two directories, each with its own output base: both images and the classify tarball."""
    base = tmp_path_factory.mktemp("images")
    a = copy_workspace(EXAMPLES / "sklearn", base / "a" / "sklearn", base / "a.output_base")
    b = copy_workspace(EXAMPLES / "sklearn", base / "checkout b" / "sklearn", base / "b.output_base")
    try:
        for ws in (a, b):
            actions = ws.build_counting(*(f"//stacks:{image}" for image in IMAGES), "//stacks:classify_image.tar")
            # Really built in each checkout (no cache between them); one layer action per stack layer, 4 for 6 uses.
            assert (actions["VenvstacksImageLayer"], actions["VenvstacksImageLayout"]) == (4, 2), actions
        yield a, b
    finally:
        a.discard()
        b.discard()


def blob(layout: Path, digest: str) -> Path:
    assert digest.startswith("sha256:"), digest
    return layout / "blobs" / "sha256" / digest.removeprefix("sha256:")


def checked_json(layout: Path, descriptor: dict[str, Any], media_type: str) -> dict[str, Any]:
    """A JSON blob after checking its descriptor: media type, digest and size are those of the bytes."""
    data = blob(layout, descriptor["digest"]).read_bytes()
    assert descriptor["mediaType"] == media_type
    assert (descriptor["size"], "sha256:" + hashlib.sha256(data).hexdigest()) == (len(data), descriptor["digest"])
    document: dict[str, Any] = json.loads(data)
    return document


def check_layout(layout: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(manifest, config) of a layout with one image, checked against the image spec independently of stacktool's
    own validator (which checks the schemas too)."""
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((layout / "index.json").read_text())
    assert (index["schemaVersion"], index["mediaType"]) == (2, INDEX)
    [entry] = index["manifests"]
    manifest = checked_json(layout, entry, MANIFEST)
    assert (manifest["schemaVersion"], manifest["mediaType"]) == (2, MANIFEST)
    config = checked_json(layout, manifest["config"], CONFIG)
    assert entry["platform"] == {"architecture": config["architecture"], "os": config["os"]} and config["os"] == "linux"
    assert config["rootfs"]["type"] == "layers"
    assert len(config["rootfs"]["diff_ids"]) == len(manifest["layers"])
    for layer, diff_id in zip(manifest["layers"], config["rootfs"]["diff_ids"], strict=True):
        path = blob(layout, layer["digest"])
        assert layer["mediaType"] == LAYER
        assert (path.stat().st_size, "sha256:" + sha256_of(path)) == (layer["size"], layer["digest"])
        assert "sha256:" + hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest() == diff_id
    assert validate_layout(layout) == []
    return manifest, config


def test_two_apps_share_the_runtime_and_framework_blobs(checkouts: tuple[Workspace, Workspace]) -> None:
    a, _ = checkouts
    classify, cluster = (check_layout(bin_dir(a) / image)[0]["layers"] for image in IMAGES)
    assert [layer["annotations"]["rules_venvstacks.layer"] for layer in classify] == [
        "cpython3_11", "framework-sklearn", "app-classify"
    ]  # fmt: skip
    assert classify[:2] == cluster[:2]  # same digests, sizes: a registry and a node store them once
    assert classify[2]["digest"] != cluster[2]["digest"]
    shared = {layer["digest"] for layer in classify[:2]}
    for image in IMAGES:  # the same bytes in both layouts, not just the same digests in the manifests
        assert {sha256_of(blob(bin_dir(a) / image, digest)) for digest in shared} == {d[7:] for d in shared}
    print("shared:", {layer["annotations"]["rules_venvstacks.layer"]: layer["size"] for layer in classify[:2]})
    print("own:", classify[2]["size"], cluster[2]["size"])


def test_two_checkouts_build_identical_images(checkouts: tuple[Workspace, Workspace]) -> None:
    a, b = checkouts
    for image in IMAGES:
        files = sorted(p.relative_to(bin_dir(a) / image) for p in (bin_dir(a) / image).rglob("*") if p.is_file())
        assert files == sorted(
            p.relative_to(bin_dir(b) / image) for p in (bin_dir(b) / image).rglob("*") if p.is_file()
        )
        for name in files:
            assert sha256_of(bin_dir(a) / image / name) == sha256_of(bin_dir(b) / image / name), (image, name)
    assert sha256_of(bin_dir(a) / "classify_image.oci.tar") == sha256_of(bin_dir(b) / "classify_image.oci.tar")


def test_image_config_runs_the_launch_module(checkouts: tuple[Workspace, Workspace]) -> None:
    a, _ = checkouts
    _, config = check_layout(bin_dir(a) / "classify_image")
    assert config["architecture"] == "amd64"
    assert config["config"]["Entrypoint"] == [f"{PREFIX}/app-classify/bin/python", "-m", "classify_iris"]
    assert config["config"]["Env"][0].startswith(f"PATH={PREFIX}/app-classify/bin:")
    layers = json.loads(config["config"]["Labels"]["rules_venvstacks.layers"])
    assert [layer["install_target"] for layer in layers] == ["cpython3_11", "framework-sklearn", "app-classify"]
    assert all(layer["requirements_hash"].startswith("sha256:") and layer["lock_version"] == 1 for layer in layers)


def test_skopeo_reads_the_layout_and_the_tarball(checkouts: tuple[Workspace, Workspace], tmp_path: Path) -> None:
    ensure_tools("skopeo")
    a, _ = checkouts
    layout, tarball = bin_dir(a) / "classify_image", bin_dir(a) / "classify_image.oci.tar"
    manifest, _ = check_layout(layout)
    for reference in (f"oci:{layout}:latest", f"oci-archive:{tarball}"):
        inspected = json.loads(skopeo("inspect", reference))
        assert inspected["Layers"] == [layer["digest"] for layer in manifest["layers"]], reference
        assert (inspected["Architecture"], inspected["Os"]) == ("amd64", "linux")
    skopeo("copy", f"oci-archive:{tarball}", f"oci:{tmp_path / 'copy'}:latest")
    [copied] = json.loads((tmp_path / "copy" / "index.json").read_text())["manifests"]
    [entry] = json.loads((layout / "index.json").read_text())["manifests"]
    assert copied["digest"] == entry["digest"]  # nothing re-encoded: the same manifest, so the same blobs
    assert all(blob(tmp_path / "copy", layer["digest"]).is_file() for layer in manifest["layers"])


def skopeo(*args: str) -> str:
    result = subprocess.run(["skopeo", *args], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def umoci_unpack(layout: Path, bundle: Path) -> Path:
    """The image unpacked by umoci into an OCI runtime bundle; returns its root file system."""
    result = subprocess.run(
        ["umoci", "unpack", "--image", f"{layout}:latest", str(bundle)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return bundle / "rootfs"


def run_in_rootfs(rootfs: Path, config: dict[str, Any], *, host_system: bool) -> subprocess.CompletedProcess[str]:
    """The image's entrypoint, Cmd and Env in `rootfs` as the root (bubblewrap); with `host_system`, this host's /usr
    (glibc, bash) is mounted over it read-only, as a base image would provide them."""
    cmd = ["bwrap", "--bind", str(rootfs), "/", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    if host_system:
        cmd += ["--ro-bind", "/usr", "/usr"] + [
            a for d in ("bin", "lib", "lib64", "sbin") for a in ("--symlink", f"usr/{d}", f"/{d}")
        ]
    cmd += ["--unshare-all", "--die-with-parent", "--clearenv"]
    for variable in config["config"]["Env"]:
        name, _, value = variable.partition("=")
        cmd += ["--setenv", name, value]
    cmd += config["config"]["Entrypoint"] + (config["config"].get("Cmd") or [])
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def classify_rootfs(checkouts: tuple[Workspace, Workspace], tmp_path_factory: pytest.TempPathFactory) -> Path:
    ensure_tools("umoci")
    return umoci_unpack(bin_dir(checkouts[0]) / "classify_image", tmp_path_factory.mktemp("unpacked") / "classify")


def test_app_runs_from_the_unpacked_image(checkouts: tuple[Workspace, Workspace], classify_rootfs: Path) -> None:
    _, config = check_layout(bin_dir(checkouts[0]) / "classify_image")
    assert sorted(p.name for p in (classify_rootfs / PREFIX.lstrip("/")).iterdir()) == [
        "app-classify", "cpython3_11", "framework-sklearn"
    ]  # fmt: skip
    app = classify_rootfs / PREFIX.lstrip("/") / "app-classify"
    assert os.readlink(app / "bin" / "python_") == "../../cpython3_11/bin/python3.11"
    assert f"home = {PREFIX}/cpython3_11/bin\n" in (app / "pyvenv.cfg").read_text()
    result = run_in_rootfs(classify_rootfs, config, host_system=True)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "iris classifier" in result.stdout and "test accuracy" in result.stdout


# The base image: this host's system files that the stack needs at run time (found with ldd), nothing else.
SYSTEM_DIRS = ("/lib/", "/lib64/", "/usr/lib/", "/usr/lib64/")
WRAPPER_TOOLS = ("bash", "env", "realpath", "dirname")  # what the layers' bin/python wrapper runs


def system_files(rootfs: Path) -> dict[str, bytes]:
    """Path in the image -> content: the wrapper's tools and the shared libraries (from /lib, /usr/lib) that they
    and every ELF file of the unpacked stack link to."""
    elves = [Path("/usr/bin", tool) for tool in WRAPPER_TOOLS]
    for directory, _, names in os.walk(rootfs):
        for name in names:
            path = Path(directory, name)
            if not path.is_symlink() and path.is_file() and path.open("rb").read(4) == b"\x7fELF":
                elves.append(path)
    libraries: set[str] = set()
    for elf in elves:
        output = subprocess.run(["ldd", str(elf)], capture_output=True, text=True, check=False).stdout
        libraries |= {m for m in re.findall(r"(/\S+) \(0x", output) if m.startswith(SYSTEM_DIRS)}
    files = {}
    for path in [Path("/usr/bin", tool) for tool in WRAPPER_TOOLS] + [Path(lib) for lib in libraries]:
        directory = os.path.realpath(path.parent)  # /lib -> /usr/lib: merged-/usr, as in the image
        files[f"{directory}/{path.name}".lstrip("/")] = Path(os.path.realpath(path)).read_bytes()
    return files


def write_base_layout(files: dict[str, bytes], layout: Path) -> None:
    """A one-layer OCI image layout of `files` (plus the merged-/usr links), for this host's architecture."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        directories = {str(parent) for name in files for parent in Path(name).parents if str(parent) != "."}
        for name in sorted(directories | {"usr/bin", "usr/lib", "usr/lib64"}):
            tar.addfile(dir_info(name))
        for link in ("bin", "lib", "lib64"):
            info = tarfile.TarInfo(link)
            info.type, info.linkname = tarfile.SYMTYPE, f"usr/{link}"
            tar.addfile(info)
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    layer = gzip.compress(raw.getvalue(), mtime=0)
    (layout / "blobs" / "sha256").mkdir(parents=True)

    def store(data: bytes) -> dict[str, Any]:
        digest = hashlib.sha256(data).hexdigest()
        (layout / "blobs" / "sha256" / digest).write_bytes(data)
        return {"digest": "sha256:" + digest, "size": len(data)}

    config = {
        "architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/usr/bin:/bin", "LC_ALL=C.UTF-8"]},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()]},
        "history": [{"created_by": "tests/e2e/test_stack_image.py: system libraries of this host"}],
    }  # fmt: skip
    manifest = {
        "schemaVersion": 2, "mediaType": MANIFEST,
        "config": {"mediaType": CONFIG, **store(json.dumps(config).encode())},
        "layers": [{"mediaType": LAYER, **store(layer)}],
    }  # fmt: skip
    entry = {
        "mediaType": MANIFEST,
        **store(json.dumps(manifest).encode()),
        "platform": {"architecture": "amd64", "os": "linux"},
    }
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": [entry]}))
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))


def dir_info(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    return info


@pytest.fixture(scope="module")
def on_base(checkouts: tuple[Workspace, Workspace], classify_rootfs: Path) -> Path:
    """`cluster_on_base`: the cluster app over a base image of the host's system files, built in checkout a."""
    if os.uname().machine != "x86_64":
        pytest.skip("the base image is made of this host's files, for the amd64 image")
    a, _ = checkouts
    write_base_layout(system_files(classify_rootfs), a.path / "stacks" / "system_base")
    with (a.path / "stacks" / "BUILD.bazel").open("a") as build:
        build.write(
            '\nfilegroup(name = "system_base", srcs = glob(["system_base/**"]))\n\n'
            'stack_image(name = "cluster_on_base", app = ":cluster", base = ":system_base",\n'
            '            env = {"OMP_NUM_THREADS": "1"})\n'
        )
    a.bazel("build", "//stacks:cluster_on_base")
    return bin_dir(a) / "cluster_on_base"


def test_base_image_goes_under_the_stack_and_runs_hermetically(
    checkouts: tuple[Workspace, Workspace], on_base: Path, tmp_path: Path
) -> None:
    base_manifest, _ = check_layout(checkouts[0].path / "stacks" / "system_base")
    manifest, config = check_layout(on_base)
    stack, _ = check_layout(bin_dir(checkouts[0]) / "cluster_image")
    assert manifest["layers"][0]["digest"] == base_manifest["layers"][0]["digest"]
    assert [layer["digest"] for layer in manifest["layers"][1:]] == [layer["digest"] for layer in stack["layers"]]
    assert config["config"]["Env"] == [
        f"PATH={PREFIX}/app-cluster/bin:/usr/bin:/bin", "LC_ALL=C.UTF-8", "OMP_NUM_THREADS=1"
    ]  # fmt: skip
    rootfs = umoci_unpack(on_base, tmp_path / "bundle")
    result = run_in_rootfs(rootfs, config, host_system=False)  # nothing of the host: the image alone
    assert result.returncode == 0, result.stderr[-4000:]
    assert "3 clusters, sizes" in result.stdout


def test_container_runtime_runs_the_image(on_base: Path, tmp_path: Path) -> None:
    """runc (Debian's OCI runtime, the one under Docker and containerd) on umoci's bundle of the image."""
    try:
        ensure_tools("runc")
    except pytest.skip.Exception as skip:
        pytest.skip(f"no container runtime here to run the image with: {skip.msg}")
    umoci_unpack(on_base, tmp_path / "bundle")
    spec = json.loads((tmp_path / "bundle" / "config.json").read_text())
    spec["process"]["terminal"] = False  # no TTY in a test
    (tmp_path / "bundle" / "config.json").write_text(json.dumps(spec))
    result = subprocess.run(
        ["runc", "run", "--bundle", str(tmp_path / "bundle"), f"stack-image-test-{os.getpid()}"],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    if result.returncode != 0 and "runc run failed" in result.stderr:
        pytest.skip(f"runc cannot start containers on this machine: {result.stderr.strip()[-500:]}")
    assert result.returncode == 0, result.stderr[-4000:]
    assert "3 clusters, sizes" in result.stdout


def test_linux_aarch64_image_from_this_host(tmp_path: Path) -> None:
    """The small stack for linux_aarch64 (its runtime a layout-faithful fixture): an arm64 image, valid, unpacked."""
    runtimes = tmp_path / "runtimes"
    runtimes.mkdir()
    root = Path(subprocess.run([str(BAZEL), "--print-root"], capture_output=True, text=True, check=True).stdout.strip())
    for local in (root / "opt/venvstacks/runtimes").glob("cpython-3.11.*-x86_64-unknown-linux-gnu-*.tar.gz"):
        shutil.copy(local, runtimes)
    make_fixture_runtime(runtimes, "linux_aarch64")
    ws = copy_workspace(WORKSPACES / "small_stack", tmp_path / "ws", tmp_path / "output_base")
    (ws.path / "user.bazelrc").write_text(f"common --repo_env=VENVSTACKS_LOCAL_RUNTIMES={runtimes}\n")
    build = ws.path / "stacks" / "BUILD.bazel"
    text = build.read_text().replace('platforms = ["linux_x86_64"]', 'platforms = ["linux_x86_64", "linux_aarch64"]')
    text = text.replace('"stack_lock")', '"stack_image", "stack_lock")')
    build.write_text(text + '\nstack_image(name = "hello_image", app = ":hello")\n')
    try:
        ws.bazel("run", "//stacks:lock")
        ws.bazel("build", "--platforms=@rules_venvstacks//platforms:linux_aarch64", "//stacks:hello_image")
        bin_dir = ws.bazel("info", "--platforms=@rules_venvstacks//platforms:linux_aarch64", "bazel-bin").stdout
        layout = Path(bin_dir.strip()) / "stacks" / "hello_image"
        manifest, config = check_layout(layout)
        assert config["architecture"] == "arm64"
        assert json.loads(config["config"]["Labels"]["rules_venvstacks.layers"])[0]["install_target"] == "cpython"
        ensure_tools("skopeo", "umoci")
        assert json.loads(skopeo("inspect", f"oci:{layout}:latest"))["Architecture"] == "arm64"
        rootfs = umoci_unpack(layout, tmp_path / "bundle")
        app = rootfs / PREFIX.lstrip("/") / "app-hello"
        assert os.readlink(app / "bin" / "python_") == "../../cpython/bin/python3.11"
        assert "version = 3.11.99\n" in (app / "pyvenv.cfg").read_text()  # the fixture runtime's: nothing of it ran
        python = rootfs / PREFIX.lstrip("/") / "cpython" / "bin" / "python3.11"
        assert python.read_bytes()[:4] == b"\x7fELF"
        assert len(manifest["layers"]) == 3
    finally:
        ws.discard()
