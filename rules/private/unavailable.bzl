"""Rule (generated repositories): a file a repository could not provide. Building it fails with the reason, so that
analysis, and with it every lock target, still works whatever an index or a download holds."""

def _unavailable_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".unavailable")
    message = ctx.actions.declare_file(ctx.label.name + ".problem.txt")
    ctx.actions.write(message, "error: " + ctx.attr.message + "\n")
    ctx.actions.run_shell(
        outputs = [out],
        inputs = [message],
        command = 'cat "$1" >&2; exit 1',
        arguments = [message.path],
        mnemonic = "VenvstacksUnavailable",
        progress_message = "Checking %{label}",
    )
    return [DefaultInfo(files = depset([out]))]

unavailable = rule(
    implementation = _unavailable_impl,
    doc = "Stands for a file that could not be fetched; building it prints `message` and fails.",
    attrs = {"message": attr.string(mandatory = True, doc = "Why the file is missing and what to do.")},
)
