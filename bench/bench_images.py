#!/usr/bin/env python3
"""Container images (issue 14): the two apps of examples/sklearn as stack images vs one single-layer image per app.

- this project: `//stacks:classify_image` and `//stacks:cluster_image` (stack_image) built cold in a fresh copy of
  examples/sklearn (warm repository cache), then rebuilt after an app-only code change (which image actions re-run,
  from Bazel's execution log). Bytes: each image's blobs, and both images' blobs counted once (what a registry stores
  and a node pulls for the two apps: the runtime and framework layers are the same blobs in both);
- per-app venvs: for each app, the same local runtime and a uv venv with every wheel the app needs (its own and its
  frameworks', the lock's files), as one tar+gzip layer (the same zlib level, 6) under /opt, with a config and a
  manifest: two images with no blob in common, as a Dockerfile copying a venv per app makes them.

    $(python3 tools/devenv.py) bench/bench_images.py      # writes bench/out/images.json (bench/chart.py draws it)
"""

from __future__ import annotations

import json
import os
import sys
import tarfile
from pathlib import Path

from common import Report, Row, executed, fresh_workspace, local_runtime_archive, machine_facts, mb, scratch
from peer_stacks import STACKS, StackRun, link_wheels
from peer_uv import install

IMAGES = {"classify": "classify_image", "cluster": "cluster_image"}
TARGET = "<= 0.6x"  # as for the bytes the stack's archives ship vs per-app venvs (docs/benchmarks.md)


def layout_blobs(layout: Path) -> dict[str, int]:
    """digest -> size of every blob of a stack_image layout (each one belongs to its one image)."""
    return {p.name: p.stat().st_size for p in (layout / "blobs" / "sha256").iterdir()}


def layer_sizes(layout: Path) -> list[tuple[str, str, int]]:
    """(stack layer, digest, size) of the image's layers, lowest first."""
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((layout / "blobs" / "sha256" / index["manifests"][0]["digest"][7:]).read_bytes())
    return [(d["annotations"]["rules_venvstacks.layer"], d["digest"], d["size"]) for d in manifest["layers"]]


def venv_image_bytes(root: Path, app: str, work: Path) -> int:
    """Bytes of a one-layer image of the runtime and the app's venv: the layer (tar+gzip, level 6), config, manifest."""
    from stacktool.image_oci import CONFIG, LAYER_GZIP, MANIFEST, canonical_json, descriptor  # on sys.path via common

    layer = work / f"{app}.tar.gz"
    with tarfile.open(layer, "w:gz", compresslevel=6) as tar:
        tar.add(root / "python", arcname="opt/python")
        tar.add(root / f"app-{app}", arcname=f"opt/app-{app}")
    config = canonical_json(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Entrypoint": [f"/opt/app-{app}/bin/python", "-m", app]},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]},
        }
    )
    layer_descriptor = {"mediaType": LAYER_GZIP, "digest": "sha256:" + "0" * 64, "size": layer.stat().st_size}
    manifest = canonical_json(
        {"schemaVersion": 2, "mediaType": MANIFEST, "config": descriptor(CONFIG, config), "layers": [layer_descriptor]}
    )
    return layer.stat().st_size + len(config) + len(manifest)


def main() -> int:
    report = Report("Container images: examples/sklearn's two apps as stack images vs one single-layer image per app")
    report.facts |= machine_facts()
    stack = next(s for s in STACKS if s.name == "sklearn")
    with scratch("bench-images-") as work:
        ws = fresh_workspace(stack.example, work)
        targets = [f"//stacks:{image}" for image in IMAGES.values()]
        try:
            seconds, actions = executed(ws, *targets)
            bin_dir = ws.path / "bazel-bin" / "stacks"
            blobs = {app: layout_blobs(bin_dir / image) for app, image in IMAGES.items()}
            layers = {app: layer_sizes(bin_dir / image) for app, image in IMAGES.items()}
            launch = ws.path / "stacks" / stack.code_change
            launch.write_text(launch.read_text() + "\n# an app-only change\n")
            _, changed = executed(ws, *targets)
        finally:
            ws.shutdown()
        image_actions = {m: n for m, n in sorted(actions.items()) if m.startswith("VenvstacksImage")}
        rebuilt = {m: n for m, n in sorted(changed.items()) if m.startswith("VenvstacksImage")}
        report.add(
            Row("cold build of both images (layers included)", seconds, None, "", f"image actions {image_actions}")
        )
        report.add(Row("app-only code change: image actions re-run", None, None, "", f"{rebuilt}"))

        run = StackRun(stack, report, work / "venvs", local_runtime_archive("3.11"), work)
        run.work.mkdir()
        link_wheels(run.layers, run.wheels)
        env = dict(os.environ, UV_CACHE_DIR=str(run.work / "uv-cache"), UV_PYTHON_DOWNLOADS="never", UV_NO_CONFIG="1")
        install(run, run.work / "root", env)
        venv_images = {app: venv_image_bytes(run.work / "root", app, run.work) for app in IMAGES}

    per_image = {app: sum(sizes.values()) for app, sizes in blobs.items()}
    both = sum({digest: size for sizes in blobs.values() for digest, size in sizes.items()}.values())
    venvs = sum(venv_images.values())
    shared = sum(size for digest, size in blobs["classify"].items() if digest in blobs["cluster"])
    second = per_image["cluster"] - shared
    report.facts |= {
        "stack image layers (classify)": [
            f"{name}: {mb(size)} {digest[:19]}" for name, digest, size in layers["classify"]
        ],
        "stack image layers (cluster)": [
            f"{name}: {mb(size)} {digest[:19]}" for name, digest, size in layers["cluster"]
        ],
        "stack images, bytes each": {app: per_image[app] for app in IMAGES},
        "stack images, both counted once": both,
        "per-app venv images, bytes each": venv_images,
    }
    report.add(
        Row(
            "bytes of both images, shared blobs once, vs per-app venv images",
            None,
            both / venvs,
            TARGET,
            f"{mb(both)} vs {mb(venvs)}",
        )
    )
    report.add(
        Row(
            "bytes to add the 2nd app's image next to the 1st vs its venv image",
            None,
            second / venv_images["cluster"],
            "",
            f"{second / 1e3:.1f} kB vs {mb(venv_images['cluster'])}",
        )
    )
    report.add(
        Row(
            "one stack image vs one per-app venv image (no sharing)",
            None,
            per_image["classify"] / venv_images["classify"],
            "",
            f"{mb(per_image['classify'])} vs {mb(venv_images['classify'])}",
        )
    )
    report.save("images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
