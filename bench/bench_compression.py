#!/usr/bin/env python3
"""Release compression (issue 15): examples/sklearn's two-app stack, its layers packed fast (zstd level 3) as every
build packs them, published with `stack_bundle(compression = "release")`, against venvstacks' own archiving of the
same layers; then the size/time curve of the formats and levels tried, on the same tar streams.

- publish, release setting: once the layers are built (the bundle built with compression = "fast" first),
  `bazel build //stacks:release` (one recompress action per layer, Bazel runs them side by side) plus
  `bazel run //stacks:release.publish -- DIR`;
- venvstacks: its `pack_venv.create_archive` (what its `publish` runs for each layer: copy the environment, then
  tar.xz at Python's default preset 6), one layer after the other as its publish does, on the same layers deployed
  from the same archives (venvstacks 0.7.0 from PyPI);
- reproducibility: the largest layer recompressed again with one thread gives the bundle's bytes (built with one
  thread per CPU);
- curve: each format and level, through the same writer as the layers' archives (`stacktool.archive`), over every
  layer's tar stream in turn, in this process; and the time to decompress what it wrote.

    bench/run compression      # writes bench/out/compression.json
"""

from __future__ import annotations

import dataclasses
import io
import json
import sys
from pathlib import Path

from chart import verdict
from common import ROOT, Report, Row, fresh_workspace, machine_facts, mb, scratch, sh, timed, tool
from peer_venvstacks import VENVSTACKS_REQUIREMENT
from stacktool.archive import FAST, RELEASE, Zstd, _codec, extract_archive, recompress
from stacktool.digest import sha256_of

EXAMPLE = ROOT / "examples" / "sklearn"
PLATFORM = "linux_x86_64"
TARGET_NAMES = ("cpython3_11", "framework-sklearn", "app-classify", "app-cluster")  # the layers' install targets
TARGETS = {"bytes": 1.10, "publish": 1 / 3}
# The curve: (label, format, zstd settings); FAST and RELEASE are among them.
LONG = Zstd(level=16, window_log=RELEASE.window_log, long_distance=True, threads=-1, job_size=RELEASE.job_size)
CURVE: list[tuple[str, str, Zstd | None]] = [
    ("zstd 3 (fast, the layers' own)", "tar.zst", FAST),
    *((f"zstd {level}, long window", "tar.zst", dataclasses.replace(LONG, level=level)) for level in (9, 12, 15)),
    ("zstd 16, level's own window", "tar.zst", dataclasses.replace(LONG, window_log=0, long_distance=False)),
    ("zstd 16, long window", "tar.zst", LONG),
    ("zstd 16, long window, min match 3", "tar.zst", dataclasses.replace(LONG, min_match=3)),
    ("zstd 16, long window, min match 3, search log 3 (release)", "tar.zst", RELEASE),
    *((f"zstd {level}, long window", "tar.zst", dataclasses.replace(LONG, level=level)) for level in (17, 19)),
    ("gzip 6", "tar.gz", None),
    ("xz 6 (venvstacks' tar.xz)", "tar.xz", None),
]
# venvstacks' archiving, run with its own interpreter: prints the seconds and the archive bytes of each layer.
VENVSTACKS_ARCHIVE = """
import json, sys, time
from pathlib import Path
from venvstacks.pack_venv import create_archive
out, results = Path(sys.argv[1]), {}
for layer in sys.argv[2:]:
    start = time.perf_counter()
    archive = create_archive(layer, out / Path(layer).name, show_progress=False)
    results[Path(layer).name] = [time.perf_counter() - start, archive.stat().st_size]
print(json.dumps(results))
"""


def compress_and_unpack(streams: list[Path], fmt: str, zstd: Zstd | None) -> tuple[float, int, float]:
    """Seconds and bytes of compressing every tar stream in `streams` as `fmt` (and `zstd`) says, and the seconds of
    decompressing the results again (what a deploy pays for the format, before writing files)."""
    compressed: list[io.BytesIO] = []

    def pack() -> None:
        for stream in streams:
            compressed.append(io.BytesIO())
            with _codec(compressed[-1], fmt, write=True, zstd=zstd or FAST) as out, stream.open("rb") as tar:
                while chunk := tar.read(1 << 20):
                    out.write(chunk)

    def unpack() -> None:
        for data in compressed:
            data.seek(0)
            with _codec(data, fmt, write=False) as stream:
                while stream.read(1 << 20):
                    pass

    seconds = timed(pack)
    return seconds, sum(len(data.getvalue()) for data in compressed), timed(unpack)


def copy_archives(bundle: Path, dest: Path) -> None:
    """The bundle's archives (out of the output base, which is deleted), into `dest`."""
    dest.mkdir()
    for archive in bundle.glob("*.tar.zst"):
        (dest / archive.name).write_bytes(archive.read_bytes())


def tar_stream(archive: Path, dest: Path) -> Path:
    with archive.open("rb") as fh, _codec(fh, "tar.zst", write=False) as stream, dest.open("wb") as out:
        while chunk := stream.read(1 << 20):
            out.write(chunk)
    return dest


def main() -> int:
    report = Report("Release compression: examples/sklearn's layers published small, against venvstacks' tar.xz")
    report.facts |= machine_facts()
    with scratch("bench-compression-") as work:
        ws = fresh_workspace(EXAMPLE, work)
        build_file = ws.path / "stacks" / "BUILD.bazel"
        text = build_file.read_text()
        bundle = ws.path / "bazel-bin" / "stacks" / "release" / PLATFORM
        packed, released = work / "packed", work / "released"
        try:
            # The layers, built in the bundle's configuration and published as packed: compression = "fast".
            build_file.write_text(text.replace('compression = "release"', 'compression = "fast"'))
            ws.bazel("build", "//stacks:release")
            copy_archives(bundle, packed)
            build_file.write_text(text)
            build = timed(lambda: ws.bazel("build", "//stacks:release"))
            out = work / "published"
            copy = timed(lambda: ws.bazel("run", "//stacks:release.publish", "--", str(out)))
            copy_archives(bundle, released)
        finally:
            ws.discard()
        packed_archives = {t: packed / f"{t}-{PLATFORM}.tar.zst" for t in TARGET_NAMES}
        released_archives = {t: released / f"{t}-{PLATFORM}.tar.zst" for t in TARGET_NAMES}
        release_bytes = sum(p.stat().st_size for p in released_archives.values())
        fast_bytes = sum(p.stat().st_size for p in packed_archives.values())

        deployed = work / "deployed"
        deployed.mkdir()
        layers = [str(extract_archive(p, deployed, top=t)) for t, p in packed_archives.items()]
        python = tool(VENVSTACKS_REQUIREMENT) / "bin" / "python"
        (work / "venvstacks").mkdir()
        theirs = json.loads(sh([python, "-c", VENVSTACKS_ARCHIVE, work / "venvstacks", *layers]))
        vs_seconds = sum(seconds for seconds, _ in theirs.values())
        vs_bytes = sum(size for _, size in theirs.values())

        largest = max(TARGET_NAMES, key=lambda t: packed_archives[t].stat().st_size)
        one_thread = work / "one-thread" / packed_archives[largest].name
        one_thread.parent.mkdir()
        recompress(packed_archives[largest], one_thread, dataclasses.replace(RELEASE, threads=1))
        same = sha256_of(one_thread) == sha256_of(released_archives[largest])

        streams = [tar_stream(p, work / f"{t}.tar") for t, p in packed_archives.items()]
        raw = sum(s.stat().st_size for s in streams)
        curve = {label: compress_and_unpack(streams, fmt, zstd) for label, fmt, zstd in CURVE}

    publish = build + copy
    ratios = {"bytes": release_bytes / vs_bytes, "publish": publish / vs_seconds}
    report.facts |= {
        "layers": ", ".join(TARGET_NAMES),
        "tar streams": mb(raw),
        "venvstacks": VENVSTACKS_REQUIREMENT,
        f"{largest} recompressed with 1 thread": "the same bytes" if same else "OTHER BYTES",
    }
    report.add(Row("publish, release setting (build + copy)", publish, None, "", f"build {build:.1f}s"))
    report.add(Row("venvstacks' archiving (tar.xz) of the same layers", vs_seconds, None, "", mb(vs_bytes)))
    report.add(
        Row(
            "release bytes vs venvstacks' tar.xz",
            None,
            ratios["bytes"],
            f"<= {TARGETS['bytes']:.2f}x",
            f"{mb(release_bytes)} vs {mb(vs_bytes)} (fast: {mb(fast_bytes)}, {fast_bytes / vs_bytes:.2f}x)",
        )
    )
    report.add(
        Row(
            "release publish vs venvstacks' archiving",
            publish,
            ratios["publish"],
            f"<= {TARGETS['publish']:.2f}x",
            f"{vs_seconds / publish:.1f}x faster",
        )
    )
    for label, (seconds, size, unpack) in curve.items():
        note = f"{mb(size)}, decompressed in {unpack:.1f}s; ratio = compressed / tar"
        report.add(Row(f"curve: {label}", seconds, size / raw, "", note))
    report.save("compression")
    return 0 if same and all(verdict(ratios[k], f"<= {TARGETS[k]}x") == "met" for k in TARGETS) else 1


if __name__ == "__main__":
    sys.exit(main())
