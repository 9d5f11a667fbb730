"""Rule: the size and sharing report of a stack's applications (HTML with an SVG chart, and the numbers as JSON)."""

load("//rules:providers.bzl", "LayerInfo")
load(":labels.bzl", "label_text")
load(":stacktool.bzl", "TOOLCHAIN_TYPE", "run_stacktool")

def _stack_report_impl(ctx):
    html = ctx.actions.declare_file(ctx.label.name + ".html")
    data = ctx.actions.declare_file(ctx.label.name + ".json")
    args = ctx.actions.args()
    args.add("--title", label_text(ctx.label))
    args.add("--html", html)
    args.add("--json", data)
    inputs = []
    for app in ctx.attr.apps:
        info = app[LayerInfo]
        if info.disabled:
            fail("{}: {} in `apps` is disabled (`platforms = []`); leave it out of the report".format(label_text(ctx.label), label_text(app.label)))
        args.add("--app")
        args.add_all(info.deploy_metadata)
        inputs.append(depset(info.deploy_metadata + [info.archive] + [below.archive for below in info.lower]))
    run_stacktool(ctx, "stack-report", args, depset(transitive = inputs), [html, data], "VenvstacksStackReport", "Writing the stack report %{label}")
    return [DefaultInfo(files = depset([html, data]))]

stack_report = rule(
    implementation = _stack_report_impl,
    doc = """The size and sharing report of a stack: `<name>.html`, one self-contained page (an SVG chart and tables, no
script) with the bytes of each layer (archive, and installed: the sum of the file sizes in its archive), what each
application shares with the others, and what its stack takes against one virtual environment per application (the
sum of an application's layers' installed sizes); `<name>.json`, the same numbers for tools. Built for the configured
target platform, from the layers' published archives (see docs/reports.md).""",
    attrs = {
        "apps": attr.label_list(
            mandatory = True,
            allow_empty = False,
            providers = [LayerInfo],
            doc = "The applications of the stack (any layers may be listed: each with the layers below it).",
        ),
    },
    toolchains = [TOOLCHAIN_TYPE],
)
