"""examples/pytorch: the CPU variant (torch from PyTorch's CPU index) locks with index names and no machine path,
builds, runs a tensor computation and passes its tests; a second checkout at another path builds from the same lock.

The PyTorch CPU index is unreachable here: the index's name is pointed at a local directory holding the CPU wheel
(VENVSTACKS_INDEX_MIRRORS, made visible to Bazel's offline root with VENVSTACKS_BAZEL_BINDS), as air-gapped CI does.
Where no such wheel is on disk, the tests say so and skip.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import EXAMPLES, Workspace, copy_workspace
from stacktool.digest import sha256_of

TORCH_WHEEL = "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
WHEEL_DIRS = [Path(p) for p in os.environ.get("VENVSTACKS_TORCH_WHEELS", "/opt/wheels").split(":")]


def wheel_directory() -> Path:
    found = next((d for d in WHEEL_DIRS if (d / TORCH_WHEEL).is_file()), None)
    if found is None:
        pytest.skip(f"no {TORCH_WHEEL} in {', '.join(map(str, WHEEL_DIRS))} (set VENVSTACKS_TORCH_WHEELS)")
    return found


@pytest.fixture(scope="module")
def checkouts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, Workspace]]:
    """Checkout A builds and tests the CPU variant; checkout B, elsewhere, builds its framework from the same lock
    (sharing a disk cache with A, so B's build is cache hits when the action keys match)."""
    wheels = wheel_directory()
    base = tmp_path_factory.mktemp("pytorch")
    saved = {k: os.environ.get(k) for k in ("VENVSTACKS_BAZEL_BINDS", "VENVSTACKS_INDEX_MIRRORS")}
    os.environ["VENVSTACKS_BAZEL_BINDS"] = str(wheels)
    os.environ["VENVSTACKS_INDEX_MIRRORS"] = f"pytorch-cpu={wheels}"
    a = copy_workspace(EXAMPLES / "pytorch", base / "a" / "pytorch", base / "a.output_base")
    b = copy_workspace(EXAMPLES / "pytorch", base / "elsewhere" / "b" / "pytorch", base / "b.output_base")
    cache = base / "disk_cache"
    for ws in (a, b):
        (ws.path / "user.bazelrc").write_text(f"build --disk_cache={cache}\n")
    try:
        yield a, b
    finally:
        a.discard()
        b.discard()
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)


def test_lock_records_index_names_and_no_machine_path(checkouts: tuple[Workspace, Workspace]) -> None:
    a, _ = checkouts
    stacks = a.path / "stacks"
    index = json.loads((stacks / "venvstacks_lock.json").read_text())
    cpu = {w["name"]: w for w in index["layers"]["stacks:torch_cpu"]["wheels"]["linux_x86_64"]}
    cuda = {w["name"]: w for w in index["layers"]["stacks:torch_cuda"]["wheels"]["linux_x86_64"]}
    assert (cpu["torch"]["index"], cpu["torch"]["url"], cpu["torch"]["version"]) == ("pytorch-cpu", "", "2.13.0+cpu")
    assert cpu["numpy"]["index"] == "pypi" and cpu["numpy"]["url"].startswith("https://files.pythonhosted.org/")
    assert cuda["torch"]["version"] == "2.13.0" and cuda["torch"]["index"] == "pypi"
    assert "nvidia-cublas" in cuda  # the CUDA variant is locked too (metadata only), and built only on request
    for path in stacks.glob("*"):
        if path.suffix in (".toml", ".json"):
            text = path.read_text()
            assert "/opt/" not in text and "file://" not in text and str(Path.home()) not in text, path


def test_cpu_variant_builds_runs_and_passes_its_tests(checkouts: tuple[Workspace, Workspace]) -> None:
    a, _ = checkouts
    run = a.bazel("run", "//stacks:tensor_cpu")
    assert "torch 2.13.0+cpu (CUDA build: False, CUDA available: False)" in run.stdout
    assert "a @ a.T = [[14.0, 32.0], [32.0, 77.0]]" in run.stdout
    test = a.bazel("test", "//stacks:all")
    assert "4 tests pass" in test.stdout + test.stderr, test.stderr[-3000:]


def test_second_checkout_elsewhere_builds_the_same_framework(checkouts: tuple[Workspace, Workspace]) -> None:
    a, b = checkouts
    a.bazel("build", "//stacks:torch_cpu")
    b.bazel("build", "//stacks:torch_cpu")
    archive = Path("bazel-bin/stacks/torch_cpu.layer/framework-torch_cpu-linux_x86_64.tar.zst")
    assert sha256_of(b.path / archive) == sha256_of(a.path / archive)
