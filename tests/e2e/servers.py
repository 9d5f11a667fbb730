"""Real remote cache and remote execution servers on loopback, started and stopped by the tests themselves.

- `nginx_cache()`: Debian's nginx with WebDAV PUT/GET, an HTTP cache for `--remote_cache=http://...`.
- `buildgrid_cache()`: BuildGrid (from PyPI) with CAS, ByteStream and ActionCache, a gRPC REAPI cache.
- `remote_executor()`: BuildGrid with an Execution service and its SQL scheduler on a private PostgreSQL cluster,
  plus `buildbox-worker` with `buildbox-run-hosttools` (Debian testing's `buildbox`) run inside the offline Bazel
  root (its glibc is new enough for buildbox; the host's may not be), for `--remote_executor=grpc://...`.

Each is a context manager yielding the URL to give Bazel. Every process is started here, remembered by its PID and
stopped (SIGTERM, then SIGKILL) on exit, also when the body raises; their directories are removed. What a server
needs is installed on first use when possible (apt-get as root, a private BuildGrid virtualenv from PyPI under
~/.cache/rules_venvstacks); when it cannot be, `Unavailable` says precisely why, and tests skip with that reason
(`serve_or_skip` makes a server the body of such a pytest fixture).
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path

import pytest
from harness import BAZEL

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rules_venvstacks"
BUILDGRID_VERSION = "0.4.4"
# psycopg2 for the scheduler's SQLAlchemy engine (with psycopg 3 its notifier fails in a loop and jobs stay queued);
# psycopg 3 for `bgd migrate apply`.
BUILDGRID_REQUIREMENTS = [f"buildgrid=={BUILDGRID_VERSION}", "psycopg2-binary", "psycopg[binary]"]
STARTUP_TIMEOUT = 120.0
PR_SET_PDEATHSIG = 1


class Unavailable(Exception):
    """A server cannot run on this machine; the message says why (tests skip with it)."""


def serve_or_skip(server: Callable[[], AbstractContextManager[str]], missing: str) -> Iterator[str]:
    """The body of a pytest fixture: yields the URL of `server` (e.g. `nginx_cache`) while it runs, or skips the tests
    using the fixture with "<missing>: <why>" when the server is `Unavailable` here.

        @pytest.fixture(scope="module")
        def http_cache() -> Iterator[str]:
            yield from servers.serve_or_skip(servers.nginx_cache, "no nginx WebDAV cache here")
    """
    try:
        with server() as url:
            yield url
    except Unavailable as e:
        pytest.skip(f"{missing}: {e}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _log_tail(log: Path, chars: int = 4000) -> str:
    try:
        return log.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the test process dies, even by SIGKILL (no orphaned servers)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class Process:
    """A server process started by us, stopped by its PID (and, should we die first, by the kernel)."""

    def __init__(self, name: str, cmd: list[str], log: Path, **kwargs: object) -> None:
        self.name = name
        self.log = log
        with log.open("ab") as out:
            self.popen = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,  # after any user switch, which would clear it
                **kwargs,  # type: ignore[call-overload]
            )

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{_log_tail(self.log)}")

    def wait_for_port(self, port: int, timeout: float = STARTUP_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not listen on 127.0.0.1:{port} in {timeout:.0f} s:\n{_log_tail(self.log)}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
        if self.popen.poll() is not None:
            return
        self.popen.send_signal(sig)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(10)


@contextmanager
def _process(
    name: str, cmd: list[str], log: Path, stop_signal: int = signal.SIGTERM, **kwargs: object
) -> Iterator[Process]:
    process = Process(name, cmd, log, **kwargs)
    try:
        yield process
    finally:
        process.stop(stop_signal)


@contextmanager
def _scratch(prefix: str) -> Iterator[Path]:
    """A directory under /tmp that service users (www-data, postgres) can traverse; removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _apt_install(*packages: str) -> None:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise Unavailable(f"{', '.join(packages)} not installed, and installing needs root and apt-get")
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if subprocess.run(cmd, env=env, capture_output=True, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, check=False)
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise Unavailable(f"apt-get install {' '.join(packages)} failed: {result.stderr[-1000:]}")


# --- nginx WebDAV: an HTTP cache ------------------------------------------------------------------------------------


def nginx_binary() -> str:
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        _apt_install("nginx-light")
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    modules = subprocess.run([binary, "-V"], capture_output=True, text=True, check=False).stderr
    if "http_dav_module" not in modules:
        raise Unavailable(f"{binary} has no WebDAV module (http_dav_module), which the HTTP cache needs for PUT")
    return binary


@contextmanager
def nginx_cache() -> Iterator[str]:
    """An nginx WebDAV server on 127.0.0.1; yields `http://127.0.0.1:PORT/cache` for --remote_cache."""
    binary = nginx_binary()
    with _scratch("venvstacks-nginx-") as prefix:
        port = free_port()
        data = prefix / "data"
        (data / "cache").mkdir(parents=True)
        user = "www-data"
        shutil.chown(data, user)
        shutil.chown(data / "cache", user)
        conf = prefix / "nginx.conf"
        conf.write_text(
            textwrap.dedent(f"""\
                daemon off;
                user {user};
                worker_processes 2;
                pid {prefix}/nginx.pid;
                error_log {prefix}/error.log warn;
                events {{ worker_connections 256; }}
                http {{
                    access_log off;
                    client_body_temp_path {data}/.body;
                    proxy_temp_path {data}/.proxy;
                    fastcgi_temp_path {data}/.fastcgi;
                    uwsgi_temp_path {data}/.uwsgi;
                    scgi_temp_path {data}/.scgi;
                    server {{
                        listen 127.0.0.1:{port};
                        location /cache/ {{
                            root {data};
                            dav_methods PUT DELETE MKCOL;
                            create_full_put_path on;
                            dav_access user:rw group:r all:r;
                            client_max_body_size 0;
                        }}
                    }}
                }}
                """)
        )
        with _process("nginx", [binary, "-c", str(conf), "-p", str(prefix)], prefix / "nginx.log", signal.SIGQUIT) as p:
            p.wait_for_port(port)
            yield f"http://127.0.0.1:{port}/cache"


# --- BuildGrid: a gRPC REAPI cache, and remote execution --------------------------------------------------------------


def buildgrid_venv() -> Path:
    """A private virtualenv with BuildGrid from PyPI (made once, under ~/.cache/rules_venvstacks)."""
    venv = CACHE / f"buildgrid-{BUILDGRID_VERSION}"
    marker = venv / ".complete"
    if marker.exists():
        return venv
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / "buildgrid.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        result = subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", *BUILDGRID_REQUIREMENTS],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise Unavailable(f"pip install {' '.join(BUILDGRID_REQUIREMENTS)} failed: {result.stderr[-1500:]}")
        marker.write_text(BUILDGRID_VERSION + "\n")
    return venv


def _buildgrid_config(port: int, storage: Path, scheduler: str | None) -> str:
    """A BuildGrid 0.4.4 server configuration: one insecure channel on loopback, instance name ''."""
    connections = schedulers = execution = ""
    if scheduler is not None:
        connections = textwrap.dedent(f"""\
            connections:
              - !sql-connection &sql
                connection-string: {scheduler}
                pool-size: 5
                pool-timeout: 30
                max-overflow: 10
            """)
        schedulers = textwrap.dedent("""\
            schedulers:
              - !sql-scheduler &scheduler
                sql: *sql
                storage: *storage
                action-cache: *action-cache
                poll-interval: 0.2
                property-set: !dynamic-property-set
                  match-property-keys: [OSFamily, ISA]
                  wildcard-property-keys: [container-image, Pool]
                assigners:
                  - !priority-age-assigner
                    count: 1
                    interval: 0.2
            """)
        execution = "      - !execution\n        scheduler: *scheduler\n"
    return (
        textwrap.dedent(f"""\
            server:
              - !channel
                address: "127.0.0.1:{port}"
                insecure-mode: true
            authorization:
              method: none
            monitoring:
              enabled: false
            # gRPC threads = the server's limit of concurrent RPCs (default 5 per core): Bazel uploads many inputs
            # at once and each running remote action holds an Execute stream, so 10 is far too few here.
            thread-pool-size: 256
            """)
        + connections
        + textwrap.dedent(f"""\
            storages:
              - !disk-storage &storage
                path: {storage}
            caches:
              - !lru-action-cache &action-cache
                storage: *storage
                max-cached-refs: 100000
                allow-updates: true
                cache-failed-actions: false
            """)
        + schedulers
        + textwrap.dedent("""\
            instances:
              - name: ''
                services:
                  - !action-cache
                    cache: *action-cache
                  - !cas
                    storage: *storage
                  - !bytestream
                    storage: *storage
            """)
        + execution
    )


@contextmanager
def _buildgrid(work: Path, scheduler: str | None = None) -> Iterator[str]:
    venv = buildgrid_venv()
    port = free_port()
    (work / "cas").mkdir()
    config = work / "buildgrid.yml"
    config.write_text(_buildgrid_config(port, work / "cas", scheduler))
    cmd = [str(venv / "bin" / "bgd"), "server", "start", "-v", str(config)]
    with _process("BuildGrid", cmd, work / "buildgrid.log", signal.SIGTERM) as p:
        p.wait_for_port(port)
        yield f"grpc://127.0.0.1:{port}"


@contextmanager
def buildgrid_cache() -> Iterator[str]:
    """A BuildGrid CAS + ActionCache on 127.0.0.1; yields `grpc://127.0.0.1:PORT` for --remote_cache."""
    with _scratch("venvstacks-buildgrid-") as work, _buildgrid(work) as url:
        yield url


def _postgres_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        _apt_install("postgresql")
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        raise Unavailable("no PostgreSQL server binaries (initdb) under /usr/lib/postgresql")
    return found[-1].parent


@contextmanager
def postgres(work: Path) -> Iterator[str]:
    """A private PostgreSQL cluster on 127.0.0.1 (run as the `postgres` user); yields its connection URL."""
    bindir = _postgres_bin()
    user = "postgres"
    try:
        shutil.chown(work, user)
    except LookupError as e:
        raise Unavailable("no `postgres` user to run PostgreSQL as (it refuses to run as root)") from e
    data, sockets = work / "data", work / "sock"
    sockets.mkdir()
    shutil.chown(sockets, user)
    as_postgres: dict[str, object] = {"user": user, "group": user, "extra_groups": [], "cwd": work}
    subprocess.run(
        [str(bindir / "initdb"), "-A", "trust", "-U", "bgd", "-D", str(data)],
        check=True,
        capture_output=True,
        **as_postgres,  # type: ignore[arg-type]
    )
    port = free_port()
    cmd = [str(bindir / "postgres"), "-D", str(data), "-c", "listen_addresses=127.0.0.1", "-p", str(port)]
    cmd += ["-k", str(sockets), "-c", "fsync=off", "-c", "max_connections=200"]
    # SIGINT: PostgreSQL's fast shutdown.
    with _process("PostgreSQL", cmd, work / "postgres.log", signal.SIGINT, **as_postgres) as p:
        p.wait_for_port(port)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while subprocess.run(  # the port opens before the database accepts connections
            [str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)], capture_output=True, check=False
        ).returncode:
            p.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL not ready:\n{_log_tail(p.log)}")
            time.sleep(0.2)
        yield f"127.0.0.1:{port}/postgres"


def bazel_root() -> Path:
    result = subprocess.run([str(BAZEL), "--print-root"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise Unavailable(f"no offline Bazel root to run buildbox in: {result.stderr.strip()}")
    return Path(result.stdout.strip())


def in_root(root: Path, binds: list[Path], cmd: list[str]) -> list[str]:
    """`cmd` run inside the offline Bazel root with bwrap, as tools/bazel does (network shared: loopback works)."""
    args = ["bwrap", "--bind", str(root), "/", "--proc", "/proc", "--dev", "/dev", "--die-with-parent"]
    args += ["--ro-bind-try", "/etc/resolv.conf", "/etc/resolv.conf"]
    for b in binds:
        args += ["--bind", str(b), str(b)]
    args += ["--setenv", "HOME", "/root", "--setenv", "PATH", "/usr/sbin:/usr/bin:/sbin:/bin"]
    args += ["--setenv", "DEBIAN_FRONTEND", "noninteractive", "--unsetenv", "PYTHONPATH", "--unsetenv", "PYTHONHOME"]
    return [*args, "--", *cmd]


def buildbox_root() -> Path:
    """The offline Bazel root with Debian's buildbox installed in it (installed on first use)."""
    root = bazel_root()
    if not (root / "usr/bin/buildbox-worker").exists():
        if os.geteuid() != 0:
            raise Unavailable("buildbox is not installed in the offline Bazel root, and installing it needs root")
        install = "apt-get install -y --no-install-recommends buildbox || "
        install += "(apt-get update && apt-get install -y --no-install-recommends buildbox)"
        result = subprocess.run(in_root(root, [], ["sh", "-c", install]), capture_output=True, text=True, check=False)
        if result.returncode != 0 or not (root / "usr/bin/buildbox-worker").exists():
            raise Unavailable(f"apt-get install buildbox in {root} failed: {result.stdout[-1500:]}{result.stderr}")
    return root


@contextmanager
def remote_executor(concurrent_jobs: int = 2) -> Iterator[str]:
    """BuildGrid (Execution, CAS, ActionCache; SQL scheduler on a private PostgreSQL) and one buildbox worker with
    platform OSFamily=linux, ISA=x86-64; yields `grpc://127.0.0.1:PORT` for --remote_executor."""
    venv = buildgrid_venv()
    root = buildbox_root()
    with ExitStack() as stack:
        pg_work = stack.enter_context(_scratch("venvstacks-postgres-"))
        database = stack.enter_context(postgres(pg_work))
        migrate = subprocess.run(
            [str(venv / "bin" / "bgd"), "migrate", "apply", f"postgresql://bgd@{database}"],
            capture_output=True,
            text=True,
            check=False,
        )
        if migrate.returncode != 0:
            raise RuntimeError(f"bgd migrate apply failed:\n{migrate.stdout[-2000:]}{migrate.stderr[-4000:]}")
        work = stack.enter_context(_scratch("venvstacks-buildgrid-"))
        url = stack.enter_context(_buildgrid(work, scheduler=f"postgresql+psycopg2://bgd@{database}"))
        http = url.replace("grpc://", "http://")
        (work / "runs").mkdir()
        worker = [
            "/usr/bin/buildbox-worker",
            f"--bots-remote={http}",
            f"--cas-remote={http}",
            "--buildbox-run=/usr/bin/buildbox-run-hosttools",
            "--runner-arg=--disable-localcas",
            f"--runner-arg=--workspace-path={work / 'runs'}",
            "--platform",
            "OSFamily=linux",
            "--platform",
            "ISA=x86-64",
            f"--concurrent-jobs={concurrent_jobs}",
            "--max-wait-time=5",
            "--retry-limit=20",
            "loopback-worker",
        ]
        p = stack.enter_context(_process("buildbox-worker", in_root(root, [work], worker), work / "worker.log"))
        time.sleep(2)
        p.check_alive()
        yield url
