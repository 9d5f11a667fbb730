"""Where runtime archives come from: a mirror (VENVSTACKS_PBS_MIRROR), checked against the sha256 table.

(The local-archive source, VENVSTACKS_LOCAL_RUNTIMES, is what every other e2e test builds with.)
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from harness import WORKSPACES, Workspace, copy_workspace

PBS_FILE = "cpython-3.11.13%2B20250702-x86_64-unknown-linux-gnu-install_only.tar.gz"
PBS_SHA256 = "e04944e70637f9d82022c9a41ae31de306b0d5bbd3fb64b9eb3261b8b5e0b30c"


class Recorder(http.server.SimpleHTTPRequestHandler):
    requested: list[str] = []  # noqa: RUF012 (one list for the class; the server is single-use)

    def do_GET(self) -> None:
        Recorder.requested.append(self.path)
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    served = tmp_path / "served"
    served.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Recorder, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Recorder.requested = []
    yield f"http://127.0.0.1:{server.server_address[1]}/pbs", served
    server.shutdown()


@pytest.fixture
def stack(tmp_path: Path, mirror: tuple[str, Path]) -> Iterator[Workspace]:
    ws = copy_workspace(WORKSPACES / "small_stack", tmp_path / "ws", tmp_path / "output_base")
    no_local = tmp_path / "no_local_runtimes"
    no_local.mkdir()
    (ws.path / "user.bazelrc").write_text(
        f"common --repo_env=VENVSTACKS_LOCAL_RUNTIMES={no_local}\ncommon --repo_env=VENVSTACKS_PBS_MIRROR={mirror[0]}\n"
    )
    yield ws
    ws.discard()


def test_the_mirror_is_asked_for_the_published_file_name(stack: Workspace, mirror: tuple[str, Path]) -> None:
    result = stack.bazel("build", "//stacks:lock", check=False)
    assert result.returncode != 0
    assert f"/pbs/20250702/{PBS_FILE}" in Recorder.requested
    assert "cannot download python-build-standalone archive cpython-3.11.13+20250702-x86_64" in result.stderr
    assert "Point VENVSTACKS_PBS_MIRROR at a mirror that serves the published file" in result.stderr


def test_a_mirror_serving_another_file_is_refused(stack: Workspace, mirror: tuple[str, Path]) -> None:
    release = mirror[1] / "pbs" / "20250702"
    release.mkdir(parents=True)
    (release / PBS_FILE.replace("%2B", "+")).write_bytes(b"not the published archive")
    result = stack.bazel("build", "//stacks:lock", check=False)
    assert result.returncode != 0
    assert len(Recorder.requested) == 1  # it was served, and refused for its sha256
    # (Over plain http Bazel will not download without a checksum, so it cannot report the file's own sha256;
    # over https it does: see test_bad_inputs.test_wheel_whose_sha256_does_not_match.)
    assert f"with sha256 {PBS_SHA256}" in result.stderr
    assert "a different file" in result.stderr
