"""Rule: one verb of the helper tool as a `bazel run` target (e.g. `bazel run @rules_venvstacks//rules:deploy -- ...`)."""

load(":stacktool.bzl", "RUNFILES_PRELUDE", "TOOLCHAIN_TYPE", "stacktool", "stacktool_command")

def _tool_command_impl(ctx):
    script = ctx.actions.declare_file(ctx.label.name)
    ctx.actions.write(script, "\n".join([
        "#!/usr/bin/env bash",
        "# bazel run {}: the helper tool's `{}` verb; relative paths are relative to where bazel was run.".format(ctx.label, ctx.attr.verb),
        "set -euo pipefail",
        RUNFILES_PRELUDE,
        'cd "${BUILD_WORKING_DIRECTORY:-.}"',
        'exec {} {} "$@"'.format(stacktool_command(ctx), ctx.attr.verb),
        "",
    ]), is_executable = True)
    return [DefaultInfo(executable = script, runfiles = ctx.runfiles(transitive_files = stacktool(ctx).files))]

tool_command = rule(
    implementation = _tool_command_impl,
    doc = "Runs one verb of the helper tool (python/stacktool) with the toolchain's interpreter.",
    attrs = {"verb": attr.string(mandatory = True, doc = "The verb, e.g. `deploy`.")},
    executable = True,
    toolchains = [TOOLCHAIN_TYPE],
)
