"""Rule: stack_image, an OCI image layout whose layers are an application's stack layers (docs/images.md).

Per stack layer, one `VenvstacksImageLayer` action, registered by an aspect on the layer targets so that every image
using a layer shares it: the layer deployed at IMAGE_PREFIX, its postinstall applied, as one OCI layer blob (a
tree artifact holding the blob and its descriptor). Per image, one `VenvstacksImageLayout` action writes the layout
(the base image's layers, the stack's blobs, config, manifest, index) and, only when the `tarball` output group is
asked for, one `VenvstacksImageTarball` action the layout as a tar. Starlark decides which layers and files;
`stacktool image` (python/stacktool/image.py) writes them.
"""

load("//platforms:platforms.bzl", "TARGET_PLATFORMS")
load("//rules:providers.bzl", "LayerInfo", "TargetPlatformInfo")
load(":labels.bzl", "label_text")
load(":stacktool.bzl", "TOOLCHAIN_TYPE", "run_stacktool")

# Where every image deploys its stack: one fixed prefix, so that a layer's OCI blob is the same in every image.
IMAGE_PREFIX = "/opt/venvstacks"

_ImageLayersInfo = provider(
    doc = "The OCI layer directories (`stacktool image layer` outputs) of a layer and of every layer below it.",
    fields = {"dirs": "dict: layer key -> File (directory): the layer's blob and descriptor"},
)

def _below(ctx):
    """The OCI layer directories of the layers below the aspect's target, by key."""
    deps = list(getattr(ctx.rule.attr, "frameworks", None) or [])
    runtime = getattr(ctx.rule.attr, "runtime", None)
    dirs = {}
    for dep in deps + ([runtime] if runtime else []):
        if _ImageLayersInfo in dep:
            dirs |= dep[_ImageLayersInfo].dirs
    return dirs

def _image_layer_impl(target, ctx):
    info = target[LayerInfo]
    below = _below(ctx)
    if info.disabled:
        return [_ImageLayersInfo(dirs = below)]
    out = ctx.actions.declare_directory(ctx.label.name + ".oci")
    config = ctx.actions.declare_file(ctx.label.name + ".oci.json")
    lower = [below[layer.key] for layer in info.lower]
    ctx.actions.write(config, json.encode_indent({
        "archive": info.archive.path,
        "install_target": info.install_target,
        "lower": [d.path for d in lower],
        "prefix": IMAGE_PREFIX,
    }))
    args = ctx.actions.args()
    args.add("layer")
    args.add("--source", config)
    args.add("--out", out.path)
    run_stacktool(ctx, "image", args, [config, info.archive] + lower, [out], "VenvstacksImageLayer", "Writing the image layer of {} at {}".format(info.install_target, IMAGE_PREFIX))
    return [_ImageLayersInfo(dirs = below | {info.key: out})]

_image_layer_aspect = aspect(
    implementation = _image_layer_impl,
    attr_aspects = ["frameworks", "runtime"],
    required_providers = [LayerInfo],
    toolchains = [TOOLCHAIN_TYPE],
    doc = "One OCI layer per stack layer (internal to stack_image).",
)

def _base_layout(ctx):
    """(the base image layout's directory path or None, its files)."""
    if not ctx.attr.base:
        return None, []
    files = ctx.files.base
    if len(files) == 1 and files[0].is_directory:
        return files[0].path, files
    index = [f for f in files if f.basename == "index.json"]
    if len(index) != 1:
        fail("{}: `base` {} must be an OCI image layout: a directory (e.g. rules_oci's oci_image or oci_pull), or the files of one (a filegroup with one index.json, oci-layout and blobs/)".format(label_text(ctx.label), label_text(ctx.attr.base.label)))
    return index[0].dirname, files

def _stack_image_impl(ctx):
    app = ctx.attr.app[LayerInfo]
    if app.disabled or app.kind != "application":
        fail("{}: `app` must be an application layer that is not disabled; {} is not".format(label_text(ctx.label), label_text(ctx.attr.app.label)))
    platform = ctx.attr._platform[TargetPlatformInfo].name
    if platform and TARGET_PLATFORMS[platform].os != "linux":
        fail("{}: OCI images of rules_venvstacks are Linux images, and the target platform {} is not Linux; build it with --platforms=@rules_venvstacks//platforms:linux_x86_64 (or linux_aarch64)".format(label_text(ctx.label), platform))
    dirs = ctx.attr.app[_ImageLayersInfo].dirs
    stack = list(reversed(app.lower)) + [app]
    base, base_files = _base_layout(ctx)
    config = ctx.actions.declare_file(ctx.label.name + ".image.json")
    ctx.actions.write(config, json.encode_indent({
        "base": base,
        "cmd": ctx.attr.cmd,
        "env": ctx.attr.env,
        "label": label_text(ctx.label),
        "layers": [{"metadata": layer.metadata.path, "oci": dirs[layer.key].path} for layer in stack],
        "platform": platform,
        "prefix": IMAGE_PREFIX,
        "tag": ctx.attr.tag,
    }))
    layout = ctx.actions.declare_directory(ctx.label.name)
    args = ctx.actions.args()
    args.add("layout")
    args.add("--source", config)
    args.add("--out", layout.path)
    inputs = [config] + [dirs[layer.key] for layer in stack] + [layer.metadata for layer in stack] + base_files
    run_stacktool(ctx, "image", args, inputs, [layout], "VenvstacksImageLayout", "Writing the OCI image layout of {}".format(label_text(ctx.label)))

    tarball = ctx.actions.declare_file(ctx.label.name + ".oci.tar")
    args = ctx.actions.args()
    args.add("tarball")
    args.add("--source", layout.path)
    args.add("--out", tarball)
    run_stacktool(ctx, "image", args, [layout], [tarball], "VenvstacksImageTarball", "Writing the OCI image tarball of {}".format(label_text(ctx.label)))
    return [
        DefaultInfo(files = depset([layout])),
        OutputGroupInfo(tarball = depset([tarball])),
    ]

stack_image_rule = rule(
    implementation = _stack_image_impl,
    doc = """An OCI image layout (directory `<name>/`) of an application and the layers below it: one OCI layer per
stack layer, lowest first, over the base image's layers; the stack deployed at `/opt/venvstacks`, postinstall
applied; entrypoint `/opt/venvstacks/<app>/bin/python -m <launch module>`. Output group `tarball`: the layout as
`<name>.oci.tar`. Linux target platforms only. Use the `stack_image` macro.""",
    attrs = {
        "app": attr.label(
            mandatory = True,
            providers = [LayerInfo],
            aspects = [_image_layer_aspect],
            doc = "The application layer the image runs.",
        ),
        "base": attr.label(
            allow_files = True,
            doc = "An OCI image layout for the target platform to put the stack on (its layers go first, its Env is kept): a directory, or a filegroup of its files.",
        ),
        "cmd": attr.string_list(
            doc = "The image's `Cmd`: default arguments of the launch module.",
        ),
        "env": attr.string_dict(
            doc = "Variables to set in the image's `Env` (after `PATH`, which starts with the application's `bin`).",
        ),
        "tag": attr.string(
            default = "latest",
            doc = "The image's name in the layout's index.json (`org.opencontainers.image.ref.name`): `oci:<dir>:<tag>` for skopeo, `--image <dir>:<tag>` for umoci.",
        ),
        "_platform": attr.label(default = "//platforms:current", providers = [TargetPlatformInfo]),
    },
    toolchains = [TOOLCHAIN_TYPE],
)
