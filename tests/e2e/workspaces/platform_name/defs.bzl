"""Writes the venvstacks name of the configured target platform to a file."""

load("@rules_venvstacks//rules:providers.bzl", "TargetPlatformInfo")

def _platform_name_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    ctx.actions.write(out, ctx.attr._platform[TargetPlatformInfo].name + "\n")
    return [DefaultInfo(files = depset([out]))]

platform_name = rule(
    implementation = _platform_name_impl,
    attrs = {"_platform": attr.label(default = "@rules_venvstacks//platforms:current")},
)
