"""Rule: one wheel installed into a tree of its own, laid out like a layer of the target platform."""

load("//rules:providers.bzl", "TargetPlatformInfo")
load(":stacktool.bzl", "TOOLCHAIN_TYPE", "run_stacktool")

def _installed_wheel_impl(ctx):
    platform = ctx.attr._platform[TargetPlatformInfo].name
    if not platform:
        fail("{}: the target platform is not one rules_venvstacks supports (see @rules_venvstacks//platforms)".format(ctx.label))
    tree = ctx.actions.declare_directory(ctx.label.name)
    args = ctx.actions.args()
    args.add("--wheel", ctx.file.wheel)
    args.add("--out", tree.path)
    args.add("--python", ctx.attr.python)
    args.add("--platform", platform)
    run_stacktool(ctx, "install-wheel", args, [ctx.file.wheel], [tree], "VenvstacksInstallWheel", "Installing {} for {}".format(ctx.file.wheel.basename, platform))
    return [DefaultInfo(files = depset([tree]))]

installed_wheel = rule(
    implementation = _installed_wheel_impl,
    doc = "Installs one wheel with `installer` into a directory laid out like a layer of the target platform.",
    attrs = {
        "python": attr.string(mandatory = True, doc = "Python version X.Y of the layers that use it."),
        "wheel": attr.label(allow_single_file = [".whl"], mandatory = True, doc = "The wheel file."),
        "_platform": attr.label(default = "//platforms:current", providers = [TargetPlatformInfo]),
    },
    toolchains = [TOOLCHAIN_TYPE],
)
