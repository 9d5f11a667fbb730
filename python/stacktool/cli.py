"""Command line of the helper tool: one verb per step Bazel runs (and `deploy` for users)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from stacktool.errors import UserError

# Each verb imports what it needs when it runs: an action pays only for its own imports.


def cmd_lock(args: argparse.Namespace) -> int:
    from stacktool import lock
    from stacktool.contract import StackSpec
    from stacktool.package_indexes import IndexSet

    stack = StackSpec.load(Path(args.spec))
    out_dir = Path(args.out_dir)
    previous = lock.read_previous_index(out_dir / args.index_name)
    indexes = IndexSet(stack.indexes)
    resolver = lock.Resolver(Path(args.uv), Path(sys.executable), indexes, tuple(args.uv_args), stack.exclude_newer)
    files = lock.lock_stack(
        stack,
        resolver,
        previous,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
        workspace=Path(args.workspace),
    )
    lock.write_lock_files(out_dir, args.index_name, files, previous)
    for line in lock.changes(previous, json.loads(files["index"])):
        print(f"  {line}")
    print(f"locked {len(stack.layers)} layers into {out_dir}")
    return 0


def cmd_install_wheel(args: argparse.Namespace) -> int:
    from stacktool.install import install_wheel
    from stacktool.layout import Layout
    from stacktool.platforms import platform

    target = platform(args.platform)
    install_wheel(Path(args.wheel), Path(args.out), Layout(args.python, target.is_windows), target.arch)
    return 0


def cmd_compose(args: argparse.Namespace) -> int:
    from stacktool.compose import compose
    from stacktool.contract import ComposeConfig, read_json

    compose(read_json(ComposeConfig, Path(args.config)), Path(args.out))
    return 0


def cmd_pack(args: argparse.Namespace) -> int:
    from stacktool.contract import ComposeConfig, PackConfig, read_json
    from stacktool.pack import compose_and_pack

    layer, config = read_json(ComposeConfig, Path(args.layer)), read_json(PackConfig, Path(args.config))
    compose_and_pack(layer, config, *map(Path, (args.archive, args.metadata, args.pylock, args.sbom)))
    return 0


def cmd_runtime_record(args: argparse.Namespace) -> int:
    from stacktool.compose import runtime_record
    from stacktool.contract import ComposeConfig, read_json, to_json

    record = runtime_record(read_json(ComposeConfig, Path(args.config)), Path(args.venv_files))
    Path(args.out).write_text(to_json(record), encoding="utf-8")
    return 0


def cmd_recompress(args: argparse.Namespace) -> int:
    from stacktool.recompress import recompress_layer

    paths = (args.archive, args.metadata, args.out_archive, args.out_metadata, args.out_sbom)
    recompress_layer(*map(Path, paths))
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    if args.to is None:
        target_args = _deploy_parser().parse_args(args.rest)
        return int(target_args.func(target_args))
    from stacktool import deploy as deploy_mod

    if not args.rest:
        raise UserError("deploy --to DIR needs the layers' metadata files, lowest layer first")
    layers = deploy_mod.deploy([Path(m) for m in args.rest], Path(args.to))
    for layer in layers:
        print(f"deployed {layer.metadata['install_target']} -> {layer.path}")
    return 0


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "0 %"


def cmd_deploy_install(args: argparse.Namespace) -> int:
    from stacktool import deploy_target
    from stacktool.deploy_source import open_source

    target = deploy_target.Target(Path(args.target))
    stack = open_source(args.source, args.platform)
    report = deploy_target.install(target, stack, update=args.update)
    unpacked = ", ".join(report.unpacked) or "nothing"
    print(f"unpacked {unpacked}: {report.unpacked_bytes} of the stack's {report.stack_bytes} archive bytes "
          f"({_percent(report.unpacked_bytes, report.stack_bytes)})")  # fmt: skip
    if report.reused:
        print(f"reused {', '.join(report.reused)}")
    held = "" if report.new_version else " (it already held this stack version)"
    was = f" (was {report.previous})" if report.previous not in (None, report.version) else ""
    print(f"version {report.version}{held} is active in {target.root}{was}")
    for metadata in stack.layers:
        if metadata["app_launch_module"]:
            app = target.root / deploy_target.CURRENT / metadata["install_target"]
            print(f"  run: {app / 'bin' / 'python'} -m {metadata['app_launch_module']}")
    return 0


def cmd_deploy_rollback(args: argparse.Namespace) -> int:
    from stacktool import deploy_target

    target = deploy_target.Target(Path(args.target))
    old, new = deploy_target.rollback(target, args.to)
    print(f"version {new} is active in {target.root} (was {old}); nothing unpacked")
    return 0


def cmd_deploy_list(args: argparse.Namespace) -> int:
    from stacktool import deploy_target

    versions = deploy_target.describe(deploy_target.Target(Path(args.target)))
    if args.json:
        sys.stdout.write(json.dumps(versions, indent=1, sort_keys=True) + "\n")
        return 0
    for version in versions:
        mark = "*" if version["current"] else " "
        print(f"{mark} {version['version']:>3}  {version['source']}  ({version['summary']})")
        for layer in version["layers"]:
            print(f"        {layer['install_target']:<28} {layer['slot']}")
    return 0


def cmd_deploy_gc(args: argparse.Namespace) -> int:
    from stacktool import deploy_target

    versions, slots = deploy_target.gc(deploy_target.Target(Path(args.target)), args.keep)
    print(f"removed versions: {', '.join(map(str, versions)) or 'none'}")
    print(f"removed layers: {', '.join(slots) or 'none'}")
    return 0


def _deploy_parser() -> argparse.ArgumentParser:
    """`stacktool deploy ACTION`: a deploy target holding several versions of a stack (docs/deploy.md)."""
    parser = argparse.ArgumentParser(prog="stacktool deploy", description=_deploy_parser.__doc__)
    actions = parser.add_subparsers(dest="action", required=True)

    def action(name: str, func: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=help_text)
        sub.set_defaults(func=func)
        sub.add_argument("--target", required=True, help="the deploy target directory")
        return sub

    for name, update in (("install", False), ("update", True)):
        p = action(
            name,
            cmd_deploy_install,
            "install a published stack version and make it active (unpacks only layers the target lacks)"
            + ("; the target must have an active version" if update else ""),
        )
        p.set_defaults(update=update)
        p.add_argument("source", help="a directory `<bundle>.publish` wrote, or its URL")
        p.add_argument("--platform", help="the platform's summary (venvstacks-<platform>.json) of tagged outputs")
    p = action("rollback", cmd_deploy_rollback, "activate the version active before this one (nothing unpacked)")
    p.add_argument("--to", type=int, help="activate this version number instead")
    p = action("list", cmd_deploy_list, "list the target's versions (* marks the active one)")
    p.add_argument("--json", action="store_true", help="print JSON for tools")
    p = action("gc", cmd_deploy_gc, "remove old versions and every layer no kept version uses")
    p.add_argument("--keep", type=int, default=2, help="versions to keep, the active one included (default: 2)")
    return parser


def deploy_main() -> int:
    """The entry point of the deploy tool as one file (deploy.pex ACTION ...): `stacktool deploy ACTION ...`."""
    return main(["deploy", *sys.argv[1:]])


def cmd_publish(args: argparse.Namespace) -> int:
    from stacktool import publish

    out = Path(args.dir)
    summaries = publish.publish(
        Path(args.manifest), out, platforms=args.platform, tag_outputs=args.tag_outputs, dry_run=args.dry_run
    )
    if args.dry_run:
        sys.stdout.write(json.dumps(summaries, indent=2, sort_keys=True) + "\n")
        return 0
    for platform, summary in summaries.items():
        for group in summary["layers"].values():
            for metadata in group:
                print(f"published {metadata['archive_name']} ({platform}, build {metadata['archive_build']})")
    print(f"stack summaries: {out / publish.SUMMARY_DIR}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from stacktool import publish

    for path in publish.export(Path(args.manifest), Path(args.dir), args.platform):
        print(f"exported {path}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from stacktool import deploy as deploy_mod

    metadata = [Path(m) for m in args.metadata]
    deploy_dir = Path(args.deploy_dir) if args.deploy_dir else deploy_mod.run_directory(args.label, metadata[-1])
    with deploy_mod.exclusive(deploy_dir):
        layers = deploy_mod.deploy(metadata, deploy_dir, incremental=True)
    rest = args.args[1:] if args.args[:1] == ["--"] else args.args
    return deploy_mod.exec_layer(layers[-1], rest, args.module)


def cmd_check(args: argparse.Namespace) -> int:
    from stacktool import deploy as deploy_mod

    layers = deploy_mod.deploy([Path(m) for m in args.metadata], Path(args.deploy_dir))
    failures = deploy_mod.check(layers, args.launch_arg, args.extra_import, args.skip_import)
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


def cmd_check_lock(args: argparse.Namespace) -> int:
    from stacktool.digest import sha256_of

    problems = list(args.problem)
    for path, expected, name in args.file:
        if not Path(path).is_file() or sha256_of(Path(path)) != expected:
            problems.append(f"{name} changed after {args.lock} locked it")
    if not problems:
        print(f"the lock of {args.lock} is current")
        if args.stamp:
            Path(args.stamp).write_text("current\n", encoding="utf-8")
        return 0
    print(f"error: the lock of {args.lock} is stale:", file=sys.stderr)
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)
    print(f"run `bazel run {args.lock}` and commit what it writes", file=sys.stderr)
    return 1


def cmd_fail(args: argparse.Namespace) -> int:
    print(f"error: {Path(args.message_file).read_text(encoding='utf-8').strip()}", file=sys.stderr)
    return 1


def cmd_import_venvstacks(args: argparse.Namespace) -> int:
    import os

    from stacktool import importer

    workspace = args.workspace or os.environ.get("BUILD_WORKSPACE_DIRECTORY")
    if not workspace:
        raise UserError("run it with `bazel run @rules_venvstacks//tools:import_venvstacks -- SPEC` or --workspace")
    request = importer.Request(Path(args.spec), Path(workspace), args.package, args.default_index)
    outcome = importer.import_venvstacks(request)
    for warning in outcome.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print("\n".join(importer.report(outcome)))
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from stacktool import layer_diff

    result = layer_diff.diff(Path(args.old), Path(args.new))
    if args.json:
        sys.stdout.write(json.dumps(result, indent=1, sort_keys=True) + "\n")
    else:
        sys.stdout.write(layer_diff.render_text(result, args.files))
    return 0


def cmd_stack_report(args: argparse.Namespace) -> int:
    from stacktool import size_report

    report = size_report.stack_report([[Path(m) for m in app] for app in args.app])
    Path(args.html).write_text(size_report.render_html(report, args.title), encoding="utf-8")
    Path(args.json).write_text(json.dumps(report, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return 0


def cmd_image(args: argparse.Namespace) -> int:
    from stacktool import image

    image.run(args.step, Path(args.source), Path(args.out))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stacktool", description=__doc__)
    verbs = parser.add_subparsers(dest="verb", required=True)

    def verb(name: str, func: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        sub = verbs.add_parser(name, help=help_text)
        sub.set_defaults(func=func)
        return sub

    p = verb("lock", cmd_lock, "resolve every layer with uv; write pylock.<env>.toml files and the index")
    p.add_argument("--spec", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--index-name", required=True)
    p.add_argument("--uv", required=True)
    p.add_argument("--workspace", required=True, help="the workspace root (layers' requirements files are below it)")
    p.add_argument("uv_args", nargs="*", help="extra uv arguments, e.g. --index-url URL or --upgrade")

    p = verb("install-wheel", cmd_install_wheel, "install one wheel into a tree of its own")
    for flag in ("--wheel", "--out", "--python", "--platform"):
        p.add_argument(flag, required=True)

    p = verb("compose", cmd_compose, "build a layer's tree from its inputs' trees (the layer as pack archives it)")
    p.add_argument("--config", required=True, help="the layer's ComposeConfig (JSON)")
    p.add_argument("--out", required=True)

    p = verb("pack", cmd_pack, "compose a layer and write its archive, metadata and SBOM")
    p.add_argument("--layer", required=True, help="the layer's ComposeConfig (JSON)")
    p.add_argument("--config", required=True, help="the layer's PackConfig (JSON)")
    for flag in ("--archive", "--metadata", "--pylock"):
        p.add_argument(flag, required=True)
    p.add_argument("--sbom", required=True, help="write the layer's CycloneDX 1.6 SBOM (JSON) here")

    p = verb("runtime-record", cmd_runtime_record, "write what a runtime layer publishes for the layers above it")
    p.add_argument("--config", required=True, help="the runtime layer's ComposeConfig (JSON)")
    p.add_argument("--out", required=True, help="write the RuntimeRecord (JSON) here")
    p.add_argument("--venv-files", required=True, help="write the files every venv over the runtime has here")

    p = verb("recompress", cmd_recompress, "write a packed tar.zst layer again in the release compression")
    for flag in ("--archive", "--metadata", "--out-archive", "--out-metadata", "--out-sbom"):
        p.add_argument(flag, required=True)

    p = verb(
        "deploy",
        cmd_deploy,
        "deploy targets: install, update, rollback, list, gc (`stacktool deploy ACTION --help`); or with --to: "
        "unpack layers (metadata files, lowest first) into a directory and postinstall",
    )
    p.add_argument("--to", help="unpack the layers whose metadata files follow into this directory")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="ACTION and its arguments, or (with --to) metadata files")

    p = verb("publish", cmd_publish, "publish a stack_bundle's layers into a directory as venvstacks does")
    p.add_argument("--manifest", required=True, help="the stack_bundle's manifest.json")
    p.add_argument("--platform", action="append", default=[], help="publish only this platform (default: all)")
    p.add_argument("--tag-outputs", action="store_true", help="name archives <install_target>-<platform>-<build>")
    p.add_argument("--dry-run", action="store_true", help="print the stack summaries; write nothing")
    p.add_argument("dir", help="the directory to publish into (relative to where bazel run was started)")

    p = verb("export", cmd_export, "deploy a stack_bundle's layers for one platform into a directory, ready to run")
    p.add_argument("--manifest", required=True, help="the stack_bundle's manifest.json")
    p.add_argument("--platform", required=True, help="the platform whose layers to export (this machine's)")
    p.add_argument("dir", help="the directory to export into (relative to where bazel run was started)")

    p = verb("run", cmd_run, "deploy (incrementally) and run the top layer")
    p.add_argument("--label", required=True, help="the layer's label: with the workspace, it names the deploy dir")
    p.add_argument("--deploy-dir", help="deploy here instead (e.g. a test's own directory)")
    p.add_argument("--module", help="run this module with `python -m` instead of the layer's launch module")
    p.add_argument("--metadata", action="append", required=True)
    p.add_argument("args", nargs=argparse.REMAINDER)

    p = verb("check", cmd_check, "deploy and check that every package imports and the launch module starts")
    p.add_argument("--deploy-dir", required=True)
    p.add_argument("--metadata", action="append", required=True)
    p.add_argument("--launch-arg", action="append", default=[])
    p.add_argument("--extra-import", action="append", default=[], help="a module to import besides the packages'")
    p.add_argument("--skip-import", action="append", default=[], help="a module not to import")

    p = verb("check-lock", cmd_check_lock, "fail when a lock is stale (stack_lock's test, requirements files)")
    p.add_argument("--lock", required=True)
    p.add_argument("--problem", action="append", default=[], help="a staleness the build already knows")
    p.add_argument(
        "--file", nargs=3, action="append", default=[], metavar=("PATH", "SHA256", "NAME"), help="a locked file"
    )
    p.add_argument("--stamp", help="write this file when the lock is current (an input of the layer's build)")

    p = verb("fail", cmd_fail, "print an error and fail (deferred analysis errors)")
    p.add_argument("--message-file", required=True)

    p = verb("import-venvstacks", cmd_import_venvstacks, "write a Bazel package from a venvstacks.toml (see docs)")
    p.add_argument("spec", help="the venvstacks.toml (a relative path is relative to where bazel was run)")
    p.add_argument("--package", help="the Bazel package to write (default: the spec's directory)")
    p.add_argument("--workspace", help="the workspace root (default: $BUILD_WORKSPACE_DIRECTORY, set by bazel run)")
    p.add_argument(
        "--default-index",
        action="store_true",
        help="lock against the default index: drop the spec's package index settings with a warning, not refuse them",
    )

    p = verb("diff", cmd_diff, "what changed between two published layers (metadata files) or stacks (directories)")
    p.add_argument("old", help="the old layer's metadata file, or a directory of published layers")
    p.add_argument("new", help="the new one")
    p.add_argument("--json", action="store_true", help="print JSON for tools instead of text")
    p.add_argument("--files", action="store_true", help="list every file added, removed or changed in the text")

    p = verb("stack-report", cmd_stack_report, "write a stack's size and sharing report (HTML with SVG, and JSON)")
    p.add_argument("--title", required=True)
    p.add_argument("--html", required=True)
    p.add_argument("--json", required=True)
    p.add_argument(
        "--app", nargs="+", action="append", required=True, help="an app's metadata files, lowest layer first"
    )
    p = verb("image", cmd_image, "OCI images: one stack layer as an image layer, an app's image layout, its tarball")
    p.add_argument("step", choices=("layer", "layout", "tarball"))
    p.add_argument("--source", required=True, help="layer, layout: the step's config (JSON); tarball: the layout")
    p.add_argument("--out", required=True, help="the directory (layer, layout) or the tar file (tarball) to write")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
