"""Exposes the configured target platform's venvstacks name to rules."""

load("//rules:providers.bzl", "TargetPlatformInfo")

def _target_platform_impl(ctx):
    return [TargetPlatformInfo(name = ctx.attr.platform_name)]

target_platform = rule(
    implementation = _target_platform_impl,
    doc = "Provides `TargetPlatformInfo` for the current configuration; see `//platforms:current`.",
    attrs = {
        "platform_name": attr.string(doc = "The platform's name; a select() over the `is_<name>` settings."),
    },
    provides = [TargetPlatformInfo],
)
