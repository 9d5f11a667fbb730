"""Rules for the trees layers are composed from: one installed wheel, one unpacked runtime archive."""

load("//rules:providers.bzl", "TargetPlatformInfo")
load(":stacktool.bzl", "TOOLCHAIN_TYPE", "run_stacktool")

def _install_impl(ctx, source, verb, mnemonic):
    platform = ctx.attr._platform[TargetPlatformInfo].name
    if not platform:
        fail("{}: the target platform is not one rules_venvstacks supports (see @rules_venvstacks//platforms)".format(ctx.label))
    tree = ctx.actions.declare_directory(ctx.label.name)
    args = ctx.actions.args()
    args.add(source[0], source[1])
    args.add("--out", tree.path)
    args.add("--python", ctx.attr.python)
    args.add("--platform", platform)
    run_stacktool(ctx, verb, args, [source[1]], [tree], mnemonic, "Installing {} for {}".format(source[1].basename, platform))
    return [DefaultInfo(files = depset([tree]))]

def _installed_wheel_impl(ctx):
    return _install_impl(ctx, ("--wheel", ctx.file.wheel), "install-wheel", "VenvstacksInstallWheel")

_PLATFORM = {"_platform": attr.label(default = "//platforms:current", providers = [TargetPlatformInfo])}

installed_wheel = rule(
    implementation = _installed_wheel_impl,
    doc = "Installs one wheel with `installer` into a directory laid out like a layer of the target platform.",
    attrs = {
        "python": attr.string(mandatory = True, doc = "Python version X.Y of the layers that use it."),
        "wheel": attr.label(allow_single_file = [".whl"], mandatory = True, doc = "The wheel file."),
    } | _PLATFORM,
    toolchains = [TOOLCHAIN_TYPE],
)

def _unpacked_runtime_impl(ctx):
    return _install_impl(ctx, ("--archive", ctx.file.archive), "unpack-runtime", "VenvstacksUnpackRuntime")

unpacked_runtime = rule(
    implementation = _unpacked_runtime_impl,
    doc = "Unpacks a python-build-standalone `install_only` archive (the base of a runtime layer).",
    attrs = {
        "archive": attr.label(allow_single_file = True, mandatory = True, doc = "The archive."),
        "python": attr.string(mandatory = True, doc = "Python version X.Y it must contain."),
    } | _PLATFORM,
    toolchains = [TOOLCHAIN_TYPE],
)
