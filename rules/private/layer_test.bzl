"""Rule: deploys a layer's stack into a fresh directory and checks it (imports, launch module)."""

load("//rules:providers.bzl", "LayerInfo")
load(":stacktool.bzl", "RUNFILES_PRELUDE", "TOOLCHAIN_TYPE", "runfiles_path", "stacktool", "stacktool_command")

def _layer_test_impl(ctx):
    layer = ctx.attr.layer[LayerInfo]
    script = ctx.actions.declare_file(ctx.label.name + ".sh")
    metadata = " ".join(['--metadata "$runfiles/{}"'.format(runfiles_path(ctx, m)) for m in layer.deploy_metadata])
    launch_args = " ".join(
        ["--launch-arg={}".format(repr(a)) for a in ctx.attr.launch_args] +
        ["--extra-import={}".format(repr(m)) for m in ctx.attr.imports] +
        ["--skip-import={}".format(repr(m)) for m in ctx.attr.skip_imports],
    )
    ctx.actions.write(script, "\n".join([
        "#!/usr/bin/env bash",
        "# bazel test {}: deploy {} and its lower layers, import every package, start the launch module.".format(ctx.label, layer.env_name),
        "set -euo pipefail",
        RUNFILES_PRELUDE,
        # A path with a space and a non-ASCII character, as users' home directories have.
        'deploy_dir="${TEST_TMPDIR:-$(mktemp -d)}/deployed layers ü"',
        'exec {} check --deploy-dir "$deploy_dir" {} {}'.format(stacktool_command(ctx), metadata, launch_args),
        "",
    ]), is_executable = True)
    files = [m for m in layer.deploy_metadata] + [layer.archive] + [below.archive for below in layer.lower]
    runfiles = ctx.runfiles(files = files, transitive_files = stacktool(ctx).files)
    return [DefaultInfo(executable = script, runfiles = runfiles)]

layer_test = rule(
    implementation = _layer_test_impl,
    doc = "Deploys the layer with its lower layers (to a path with a space and `ü`), imports every package of the stack through the layer's python (the top-level modules each package declares; one that fails only for an optional dependency no layer installs is noted, not failed) and, for an application, runs its launch module.",
    attrs = {
        "imports": attr.string_list(doc = "Modules to import besides the packages' top-level modules, e.g. `numpy.linalg`."),
        "launch_args": attr.string_list(doc = "Arguments for the launch module's check run."),
        "skip_imports": attr.string_list(doc = "Top-level modules not to import (e.g. one that needs a display)."),
        "layer": attr.label(mandatory = True, providers = [LayerInfo], doc = "The layer to check."),
    },
    test = True,
    toolchains = [TOOLCHAIN_TYPE],
)
