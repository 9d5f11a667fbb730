"""Running the helper tool: in actions (exec-root paths) and in run/test scripts (runfiles paths)."""

TOOLCHAIN_TYPE = Label("//rules:toolchain_type")

# Interpreter flags for every run of the tool: no site, no PYTHON* variables, no user site, no .pyc writes.
INTERPRETER_FLAGS = ["-S", "-E", "-s", "-B"]

# The tool's outputs depend on no environment variable (it sorts what it writes and fixes every time stamp, and -E
# makes Python ignore PYTHON* variables); a fixed UTF-8 locale keeps file names and messages the same everywhere.
ACTION_ENV = {"LC_ALL": "C.UTF-8"}

def _sys_path(path, entry):
    """A zip goes on sys.path itself; a marker file stands for its directory."""
    return path if entry.extension == "zip" else path.rpartition("/")[0]

def stacktool(ctx):
    return ctx.toolchains[TOOLCHAIN_TYPE].stacktool

def interpreter_path(tool):
    """The exec path of the tool's interpreter: a file in the `runtime` directory of `tool` (a StackToolInfo)."""
    return tool.runtime.path + "/" + tool.interpreter

def run_stacktool(ctx, verb, arguments, inputs, outputs, mnemonic, progress_message, execution_requirements = None):
    """Registers an action that runs one verb of the helper tool.

    Args:
      ctx: the rule context (its rule must declare the toolchain type).
      verb: the tool's verb, such as `compose`.
      arguments: an Args object with the verb's arguments.
      inputs: depset or list of the verb's input files.
      outputs: list of the files and directories it writes.
      mnemonic: the action's mnemonic.
      progress_message: shown while it runs.
      execution_requirements: the action's execution requirements, if any.
    """
    tool = stacktool(ctx)
    prefix = ctx.actions.args()
    prefix.add_all(INTERPRETER_FLAGS)
    prefix.add(tool.entry)
    for entry in tool.sys_path:
        prefix.add("--path", _sys_path(entry.path, entry))
    prefix.add(verb)
    ctx.actions.run(
        executable = interpreter_path(tool),
        arguments = [prefix, arguments],
        inputs = depset(transitive = [tool.files, inputs if type(inputs) == "depset" else depset(inputs)]),
        outputs = outputs,
        env = ACTION_ENV,
        mnemonic = mnemonic,
        progress_message = progress_message,
        execution_requirements = execution_requirements,
        toolchain = TOOLCHAIN_TYPE,
    )

def runfiles_path(ctx, file):
    """The path of `file` below the runfiles root."""
    if file.short_path.startswith("../"):
        return file.short_path[3:]
    return ctx.workspace_name + "/" + file.short_path

def stacktool_command(ctx):
    """A shell command prefix (for bash scripts with $runfiles set) that runs the tool from runfiles.

    Args:
      ctx: the rule context (its rule must declare the toolchain type).

    Returns:
      The command prefix, to be followed by a verb and its arguments.
    """
    tool = stacktool(ctx)
    words = ['"$runfiles/{}/{}"'.format(runfiles_path(ctx, tool.runtime), tool.interpreter)] + INTERPRETER_FLAGS
    words.append('"$runfiles/{}"'.format(runfiles_path(ctx, tool.entry)))
    for entry in tool.sys_path:
        words += ["--path", '"$runfiles/{}"'.format(_sys_path(runfiles_path(ctx, entry), entry))]
    return " ".join(words)

# Finds the runfiles root of a bazel run / bazel test script.
RUNFILES_PRELUDE = """\
if [[ -n "${RUNFILES_DIR:-}" ]]; then runfiles=$RUNFILES_DIR
elif [[ -n "${TEST_SRCDIR:-}" ]]; then runfiles=$TEST_SRCDIR
else runfiles=$0.runfiles
fi
runfiles=$(cd "$runfiles" && pwd)
"""
