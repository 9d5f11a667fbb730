"""A rule that resolves one toolchain, and that toolchain: the least a rule set with toolchains makes Bazel do."""

def _one_rule_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    ctx.actions.run_shell(outputs = [out], command = "echo one > " + out.path, toolchain = "//:toolchain_type")
    return [DefaultInfo(files = depset([out]))]

one_rule = rule(
    implementation = _one_rule_impl,
    doc = "Writes one file with one action, after resolving //:toolchain_type.",
    toolchains = ["//:toolchain_type"],
)

def _empty_toolchain_impl(_ctx):
    return [platform_common.ToolchainInfo()]

empty_toolchain = rule(
    implementation = _empty_toolchain_impl,
    doc = "A toolchain that provides nothing.",
)
