"""What the repository rules share: BUILD text rendering and downloads checked against a sha256."""

load("@bazel_tools//tools/build_defs/repo:utils.bzl", "read_user_netrc", "use_netrc")

def _expr(text):
    """A Starlark expression to write as it is (e.g. a glob() call), not as a string."""
    return struct(expr = text)

def _select(branches, default):
    """A select() over the given `{condition label: value}`, with a default."""
    return struct(branches = branches, default = default)

def _value(value):
    """`value` as Starlark source: repr() of plain values, the text of an expr, a select() over plain values."""
    if type(value) != "struct":
        return repr(value)
    if hasattr(value, "expr"):
        return value.expr
    lines = ["        {}: {},".format(repr(key), repr(branch)) for key, branch in sorted(value.branches.items())]
    lines.append('        "//conditions:default": {},'.format(repr(value.default)))
    return "select({\n" + "\n".join(lines) + "\n    })"

def _target(kind, name, **attrs):
    """One target: `kind(name = ..., <attrs in the order given>)`; attrs whose value is None are left out."""
    lines = ["{}(".format(kind), "    name = {},".format(repr(name))]
    lines += ["    {} = {},".format(key, _value(value)) for key, value in attrs.items() if value != None]
    return "\n".join(lines + [")"])

def _build_file(loads, targets, comment = None):
    """A BUILD file: `loads` ({bzl label: [symbols]}), public visibility, then the targets (rendered text)."""
    lines = ["# " + line for line in comment.split("\n")] if comment else []
    lines += ["load({}, {})".format(repr(bzl), ", ".join([repr(s) for s in symbols])) for bzl, symbols in loads.items()]
    lines += ["", 'package(default_visibility = ["//visibility:public"])']
    for target in targets:
        lines += ["", target]
    return "\n".join(lines).lstrip("\n") + "\n"

render = struct(
    build_file = _build_file,
    expr = _expr,
    select = _select,
    target = _target,
)

def download_checked(rctx, urls, output, sha256, what, fix):
    """Downloads with a sha256 (so the repository cache serves it); explains a failure instead of Bazel's trace.

    Args:
      rctx: the repository context.
      urls: where to download from.
      output: the file to write.
      sha256: the expected sha256.
      what: what is being downloaded, for messages.
      fix: what the user should do when the sha256 does not match.

    Returns:
      None when the file is there, else why it is not (for the caller to report when it is built).
    """

    # Credentials come from Bazel (--credential_helper) and the user's .netrc, never from a lock.
    auth = use_netrc(read_user_netrc(rctx), urls, {})
    result = rctx.download(url = urls, output = output, sha256 = sha256, allow_fail = True, auth = auth)
    if result.success:
        return None

    # Without a sha256 Bazel downloads only over https; that is enough to tell a different file from no file.
    probe = rctx.download(url = urls, output = output + ".probe", allow_fail = True, auth = auth)
    if probe.success:
        rctx.delete(output + ".probe")
        return "{} from {} has sha256 {}, but {} was expected. {}".format(what, urls[0], probe.sha256, sha256, fix)
    return "cannot download {} with sha256 {} from {}: no network, no such file there, or (plain http) a different file. {}".format(
        what,
        sha256,
        " or ".join(urls),
        fix,
    )
