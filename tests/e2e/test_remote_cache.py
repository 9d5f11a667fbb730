"""Remote caching of the MLX example with real cache servers on loopback (started and stopped here, see servers.py).

Checkout A builds with an empty remote cache; checkout B (another path, a new output base, nothing local but Bazel's
repository cache of downloads) then executes no action at all and gets bit-identical archives: the action keys do
not depend on the checkout path or the output base. Then a one-framework change re-executes only that framework's
actions. Both with an HTTP cache (nginx WebDAV) and a gRPC REAPI cache (BuildGrid).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import servers
from harness import (
    EXAMPLES,
    MLX_BUILD_MNEMONICS,
    MLX_LAYERS,
    Workspace,
    assert_same_published_layers,
    copy_workspace,
    open_archive,
    published,
    read_json_stream,
)

FRAMEWORK_CHANGE = ('"mlx==0.32.4",', '"mlx==0.32.4",\n        "six==1.16.0",')
# Build without the bytes, but fetch what a CI job publishes: the archives and their metadata.
# (The regex matches exec paths; the wheels' installed trees, `external/<repo>/installed_.../`, do not match.)
DOWNLOAD_ARCHIVES = ["--remote_download_minimal", r"--remote_download_regex=.*\.layer/[^/]+\.(tar\.zst|tar\.gz|json)$"]


def files_below(trees: Iterable[Path]) -> list[Path]:
    """The regular files (not links) in the directories `trees`."""
    return [p for tree in trees for p in tree.rglob("*") if p.is_file() and not p.is_symlink()]


def installed_files(ws: Workspace) -> list[Path]:
    """The files of the wheels' installed trees (the inputs of the layers' Pack actions) in the output tree."""
    return files_below((ws.path / "bazel-bin" / "external").glob("*/installed_*"))


def tool_environment_files(ws: Workspace) -> list[Path]:
    """The files of the helper tool's environment (its interpreter, its dependencies' zip) in the output tree,
    which an action writes in the exec configuration."""
    return files_below((ws.path / "bazel-out").glob("*/bin/external/*venvstacks_toolchains"))


def build_logged(ws: Workspace, name: str, *args: str) -> list[dict[str, Any]]:
    """Builds //stacks:mlx_app; returns every spawn of the execution log (cache hits included)."""
    log = ws.output_base / f"{name}.json"
    ws.bazel("build", "//stacks:mlx_app", f"--execution_log_json_file={log}", *args)
    return read_json_stream(log)


def executed(log: list[dict[str, Any]]) -> Counter[str]:
    return Counter(e["mnemonic"] for e in log if not e.get("cacheHit"))


def outputs(entry: dict[str, Any]) -> list[str]:
    return [o["path"] for o in entry.get("actualOutputs", entry.get("listedOutputs", []))]


def members(archive: Path) -> dict[str, str]:
    """name -> kind ("file", "dir", or "-> target" for a symlink) of a .tar.zst or .tar.gz archive."""
    with open_archive(archive) as tar:
        return {m.name: f"-> {m.linkname}" if m.issym() else "dir" if m.isdir() else "file" for m in tar}


@pytest.fixture(scope="module")
def http_cache() -> Iterator[str]:
    yield from servers.serve_or_skip(servers.nginx_cache, "no nginx WebDAV cache here")


@pytest.fixture(scope="module")
def grpc_cache() -> Iterator[str]:
    yield from servers.serve_or_skip(servers.buildgrid_cache, "no BuildGrid here")


@contextmanager
def filled_then_reused(base: Path, cache: str, filler: str, user: str, *user_flags: str) -> Iterator[dict[str, Any]]:
    """Checkout `filler` fills the remote cache; then checkout `user`, elsewhere with a new output base, builds from
    it (with `user_flags` too). Yields both workspaces by name, their logs as "log_<name>", and the cache URL."""
    first = copy_workspace(EXAMPLES / "mlx", base / filler / "mlx", base / f"{filler}.output_base")
    second = copy_workspace(EXAMPLES / "mlx", base / "elsewhere" / user / "mlx", base / f"{user}.output_base")
    try:
        log_first = build_logged(first, filler, f"--remote_cache={cache}")
        first.shutdown()  # its outputs stay: tests compare them with the second's
        log_second = build_logged(second, user, f"--remote_cache={cache}", *user_flags)
        yield {filler: first, user: second, f"log_{filler}": log_first, f"log_{user}": log_second, "cache": cache}
    finally:
        first.discard()
        second.discard()


@pytest.fixture(scope="module")
def checkouts(http_cache: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Checkout A fills the HTTP cache; checkout B, elsewhere with a new output base, builds from it."""
    with filled_then_reused(tmp_path_factory.mktemp("remote_cache"), http_cache, "a", "b") as found:
        yield found


def test_clean_checkout_elsewhere_executes_nothing_with_the_http_cache(checkouts: dict[str, Any]) -> None:
    cold = executed(checkouts["log_a"])
    assert set(cold) == MLX_BUILD_MNEMONICS and cold["VenvstacksPack"] == len(MLX_LAYERS), cold
    warm = checkouts["log_b"]
    assert executed(warm) == {}, executed(warm)
    assert {e["runner"] for e in warm} == {"remote cache hit"}
    assert Counter(e["mnemonic"] for e in warm) == cold  # the same actions, every one a remote cache hit


def test_clean_checkout_elsewhere_gets_bit_identical_archives(checkouts: dict[str, Any]) -> None:
    assert_same_published_layers(checkouts["a"], checkouts["b"])


def test_framework_change_reexecutes_only_that_framework(checkouts: dict[str, Any]) -> None:
    """One more requirement in the framework: its install and pack run; nothing of the runtime does, and
    the application (whose lock and inputs do not change) stays a cache hit."""
    b: Workspace = checkouts["b"]
    build = b.path / "stacks" / "BUILD.bazel"
    original = build.read_text()
    assert FRAMEWORK_CHANGE[0] in original
    build.write_text(original.replace(*FRAMEWORK_CHANGE))
    try:
        b.bazel("run", "//stacks:lock")
        log = build_logged(b, "framework_change", f"--remote_cache={checkouts['cache']}")
        ran = [e for e in log if not e.get("cacheHit")]
        counts = Counter(e["mnemonic"] for e in ran)
        assert counts == {"VenvstacksInstallWheel": 1, "VenvstacksPack": 1}, counts
        install = next(e for e in ran if e["mnemonic"] == "VenvstacksInstallWheel")
        assert all("whl_six_" in path for path in outputs(install)), outputs(install)
        for entry in ran:
            if entry["mnemonic"] != "VenvstacksInstallWheel":
                assert all("/stacks/mlx.layer/" in path for path in outputs(entry)), outputs(entry)
        assert not any("cpython3_11" in path for e in ran for path in outputs(e))
        assert "six-1.16.0" in str(members(published(b, "mlx", ".tar.zst")))
    finally:
        build.write_text(original)
        b.bazel("run", "//stacks:lock")


@pytest.fixture(scope="module")
def grpc_checkouts(grpc_cache: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Checkout C fills the BuildGrid cache; checkout D builds from it without the bytes (archives only)."""
    with filled_then_reused(tmp_path_factory.mktemp("grpc_cache"), grpc_cache, "c", "d", *DOWNLOAD_ARCHIVES) as found:
        yield found


def test_grpc_cache_clean_checkout_executes_nothing_and_downloads_only_archives(grpc_checkouts: dict[str, Any]) -> None:
    c, d = grpc_checkouts["c"], grpc_checkouts["d"]
    assert set(executed(grpc_checkouts["log_c"])) == MLX_BUILD_MNEMONICS
    assert executed(grpc_checkouts["log_d"]) == {}
    assert {e["runner"] for e in grpc_checkouts["log_d"]} == {"remote cache hit"}
    assert_same_published_layers(c, d)
    assert installed_files(c)  # built with the default, --remote_download_toplevel: downloaded with the rest
    assert installed_files(d) == []  # left in the cache
    # The tool's interpreter is an action output too: a clean checkout whose actions are all cache hits never
    # unpacks the runtime archive.
    assert tool_environment_files(c)
    assert tool_environment_files(d) == []


def test_pack_rerun_locally_over_trees_left_in_the_cache_gives_the_same_layer(grpc_checkouts: dict[str, Any]) -> None:
    """Building without the bytes, a Pack that reruns locally (here: the framework's archive format changes) gets
    the wheels' installed trees and the runtime's venv files from the cache; its archive must hold the same members
    (symlinks included: Pack composes the layer itself, so no tree artifact's symlinks are lost on the way)."""
    d: Workspace = grpc_checkouts["d"]
    build = d.path / "stacks" / "BUILD.bazel"
    original = build.read_text()
    build.write_text(
        original.replace(
            '    runtime = ":cpython3_11",\n', '    archive_format = "tar.gz",\n    runtime = ":cpython3_11",\n'
        )
    )
    try:
        log = build_logged(d, "tar_gz", f"--remote_cache={grpc_checkouts['cache']}", *DOWNLOAD_ARCHIVES)
        assert executed(log) == {"VenvstacksPack": 1}
        repacked = members(published(d, "mlx", ".tar.gz"))
        reference = members(published(grpc_checkouts["c"], "mlx", ".tar.zst"))
        assert repacked == reference
    finally:
        build.write_text(original)
