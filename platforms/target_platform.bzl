"""Exposes the configured target platform's venvstacks name to rules, and the platform table as JSON."""

load("//rules:providers.bzl", "TargetPlatformInfo")
load(":platforms.bzl", "TARGET_PLATFORMS")

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

def _platform_table_impl(ctx):
    table = ctx.actions.declare_file(ctx.label.name + ".json")
    ctx.actions.write(table, json.encode_indent(TARGET_PLATFORMS) + "\n")
    return [DefaultInfo(files = depset([table]))]

platform_table = rule(
    implementation = _platform_table_impl,
    doc = "Writes `<name>.json`: TARGET_PLATFORMS of platforms.bzl (name -> name, os, cpu, constraints).",
)
