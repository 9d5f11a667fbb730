"""stack_bundle: the layers of a stack built for several target platforms in one build (a split transition), with
`bazel run` targets that publish them (`<name>.publish`) and export the built environments (`<name>.export`)."""

load("//platforms:platforms.bzl", "TARGET_PLATFORMS")
load("//rules:providers.bzl", "LayerInfo", "StackBundleInfo", "TargetPlatformInfo")
load(":stacktool.bzl", "RUNFILES_PRELUDE", "TOOLCHAIN_TYPE", "run_stacktool", "runfiles_path", "stacktool", "stacktool_command")

def _platforms_transition_impl(_settings, attr):
    for platform in attr.platforms:
        if platform not in TARGET_PLATFORMS:
            fail("stack_bundle {}: unknown platform {}; supported: {}".format(repr(attr.name), repr(platform), ", ".join(sorted(TARGET_PLATFORMS))))
    return {
        platform: {"//command_line_option:platforms": str(Label("//platforms:" + platform))}
        for platform in attr.platforms
    }

_platforms_transition = transition(
    implementation = _platforms_transition_impl,
    inputs = [],
    outputs = ["//command_line_option:platforms"],
)

def _recompressed(ctx, platform, layer):
    """The layer's archive, metadata and SBOM with the archive in the release compression."""
    outputs = [
        ctx.actions.declare_file("{}/{}/{}".format(ctx.label.name, platform, file.basename))
        for file in (layer.archive, layer.metadata, layer.sbom)
    ]
    args = ctx.actions.args()
    args.add("--archive", layer.archive)
    args.add("--metadata", layer.metadata)
    args.add("--out-archive", outputs[0])
    args.add("--out-metadata", outputs[1])
    args.add("--out-sbom", outputs[2])
    message = "Recompressing {} for release".format(layer.archive.basename)
    run_stacktool(ctx, "recompress", args, [layer.archive, layer.metadata], outputs, "VenvstacksRecompress", message)
    return outputs

def _linked(ctx, platform, layer):
    """The layer's archive, metadata and SBOM as the layer published them."""
    links = []
    for file in (layer.archive, layer.metadata, layer.sbom):
        link = ctx.actions.declare_file("{}/{}/{}".format(ctx.label.name, platform, file.basename))
        ctx.actions.symlink(output = link, target_file = file)
        links.append(link)
    return links

def _stack_bundle_impl(ctx):
    outputs = []
    groups = {}
    manifest = {}
    for platform, targets in sorted(ctx.split_attr.layers.items()):
        layers = {}
        for target in targets:
            info = target[LayerInfo]
            for layer in [info] + info.lower:
                layers[layer.key] = layer
        published = []
        order = []
        for layer in sorted(layers.values(), key = lambda layer: (len(layer.lower), layer.key)):
            if ctx.attr.compression == "release" and layer.archive.basename.endswith(".tar.zst"):
                published += _recompressed(ctx, platform, layer)
            else:
                published += _linked(ctx, platform, layer)
            order.append(layer.metadata.basename)
        manifest[platform] = {"deploy_order": order}
        groups[platform] = depset(published)
        outputs += published
    manifest_file = ctx.actions.declare_file(ctx.label.name + "/manifest.json")
    ctx.actions.write(manifest_file, json.encode_indent({"platforms": manifest}) + "\n")
    files = depset([manifest_file] + outputs)
    return [
        DefaultInfo(files = files),
        OutputGroupInfo(**groups),
        StackBundleInfo(manifest = manifest_file, files = files),
    ]

_stack_bundle = rule(
    implementation = _stack_bundle_impl,
    doc = "The files of a stack_bundle (see the stack_bundle macro).",
    attrs = {
        "compression": attr.string(
            default = "fast",
            values = ["fast", "release"],
            doc = "`fast`: the layers' archives as they were packed; `release`: tar.zst archives compressed again, smaller (see the stack_bundle macro).",
        ),
        "layers": attr.label_list(
            mandatory = True,
            providers = [LayerInfo],
            cfg = _platforms_transition,
            doc = "The top layers of the stack (usually its applications).",
        ),
        "platforms": attr.string_list(
            mandatory = True,
            doc = "Target platforms to build for (venvstacks names, e.g. `linux_x86_64`, `macosx_arm64`, `win_amd64`).",
        ),
    },
    provides = [StackBundleInfo],
    toolchains = [TOOLCHAIN_TYPE],
)

def _bundle_command_impl(ctx):
    bundle = ctx.attr.bundle[StackBundleInfo]
    words = [stacktool_command(ctx), ctx.attr.verb, '--manifest "$manifest"']
    if ctx.attr.verb == "export":
        words.append("--platform " + ctx.attr._platform[TargetPlatformInfo].name)
    script = ctx.actions.declare_file(ctx.label.name + ".sh")
    ctx.actions.write(script, "\n".join([
        "#!/usr/bin/env bash",
        "# bazel run {}: `stacktool {}` of {}; relative paths are relative to where bazel was run.".format(ctx.label, ctx.attr.verb, ctx.attr.bundle.label),
        "set -euo pipefail",
        RUNFILES_PRELUDE,
        'manifest="$runfiles/{}"'.format(runfiles_path(ctx, bundle.manifest)),
        'cd "${BUILD_WORKING_DIRECTORY:-.}"',
        'exec {} "$@"'.format(" ".join(words)),
        "",
    ]), is_executable = True)
    runfiles = ctx.runfiles(transitive_files = depset(transitive = [bundle.files, stacktool(ctx).files]))
    return [DefaultInfo(executable = script, runfiles = runfiles)]

_bundle_command = rule(
    implementation = _bundle_command_impl,
    doc = "Runs the helper tool's publish or export verb on a stack_bundle's files.",
    attrs = {
        "bundle": attr.label(mandatory = True, providers = [StackBundleInfo], doc = "The stack_bundle."),
        "verb": attr.string(mandatory = True, values = ["publish", "export"], doc = "The verb."),
        "_platform": attr.label(default = "//platforms:current", providers = [TargetPlatformInfo]),
    },
    executable = True,
    toolchains = [TOOLCHAIN_TYPE],
)

def stack_bundle(name, layers, platforms, compression = "fast", **kwargs):
    """The archives, metadata and SBOMs of `layers` (and every layer below them) for each of `platforms`.

    Built in one invocation from any host: `<name>/<platform>/<install_target>-<platform>.<format>`, `.json` and
    `.cdx.json`, plus `<name>/manifest.json` listing, per platform, the metadata files in deploy order (lowest layer
    first). Output groups named after the platforms select one platform's files.

    `compression = "release"` is for the bundle you publish: each `tar.zst` archive is compressed again (zstd level
    16 with a 128 MiB long-distance window, one thread per CPU: docs/deploy.md#release-compression), within 10 % of
    venvstacks' `tar.xz` and more than 3x faster to write, and its metadata and SBOM give the new size and sha256. The tar
    stream inside is the same, the bytes are the same on every machine and for any number of CPUs, and the layers
    themselves stay fast to build: one action per layer reads its packed archive, nothing else is built again.
    Archives of other formats are published as packed.

    Two `bazel run` targets come with it (docs/deploy.md):

    - `<name>.publish -- DIR [--tag-outputs] [--platform P] [--dry-run]`: writes the archives, SBOMs and
      `__venvstacks__/` (each layer's metadata and the stack summary of each platform) into DIR as venvstacks'
      `publish` does; refuses to overwrite an archive with other bytes. Several platforms need `--tag-outputs`.
    - `<name>.export -- DIR`: deploys the layers of the platform `bazel run` targets (this machine's, unless
      `--platforms` says otherwise) into DIR, unpacked and ready to run, like venvstacks' `local-export`.

    Args:
      name: the bundle's name.
      layers: the top layers of the stack (usually its applications); providers: `LayerInfo`.
      platforms: target platforms to build for (venvstacks names, e.g. `linux_x86_64`, `macosx_arm64`,
        `win_amd64`).
      compression: `fast` (default): the archives as the layers packed them (zstd level 3 for `tar.zst`);
        `release`: `tar.zst` archives compressed again, smaller (see above).
      **kwargs: common attributes (`visibility`, `tags`, ...), given to all three targets.
    """
    _stack_bundle(name = name, layers = layers, platforms = platforms, compression = compression, **kwargs)
    _bundle_command(name = name + ".publish", bundle = name, verb = "publish", **kwargs)
    _bundle_command(name = name + ".export", bundle = name, verb = "export", **kwargs)
