"""Bad input: each case gives one clear error that names the target (or file) and the fix, no Python traceback, and
no partial output.

One locked and built copy of tests/e2e/workspaces/small_stack (one Bazel server) serves every case: a case edits
the copy (BUILD snippets, lock files, MODULE.bazel), runs the one command a user would run, and the `pristine`
fixture puts every source file back afterwards, so the cases do not depend on each other.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import WORKSPACES, Workspace, copy_workspace
from runtime_fixtures import make_fixture_runtime
from stacktool.digest import sha256_of

SIX_SHA256 = "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254"  # six-1.16.0-py2.py3-none-any.whl
RELOCK = "run `bazel run //stacks:lock`"
UV_ERROR = "error: No solution found when resolving dependencies"  # uv's own first line, quoted by the lock's message

# A frame of a Python traceback (Starlark's frames say `line N, column M, in f` and name .bzl files).
PYTHON_FRAME = re.compile(r'File "[^"]+\.py", line \d+, in ')
# A Starlark error other than fail() (a key missing from a dict, a bad type, ...): a crash, not a message.
STARLARK_CRASH = re.compile(r"^Error(?: in (?!fail:)\w+)?: ", re.MULTILINE)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    base = tmp_path_factory.mktemp("bad_inputs")
    ws = copy_workspace(WORKSPACES / "small_stack", base / "ws", base / "output_base")
    ws.bazel("run", "//stacks:lock")
    ws.bazel("build", "//stacks:hello")
    yield ws
    ws.discard()


def _sources(root: Path) -> dict[Path, bytes]:
    """Every file of the workspace (not Bazel's convenience links), by relative path."""
    files = {}
    for directory, dirnames, filenames in os.walk(root):
        if Path(directory) == root:
            dirnames[:] = [d for d in dirnames if not d.startswith("bazel-")]
        for name in filenames:
            path = Path(directory, name)
            if not path.is_symlink():
                files[path.relative_to(root)] = path.read_bytes()
    return files


@pytest.fixture(autouse=True)
def pristine(stack: Workspace) -> Iterator[None]:
    """Puts the workspace's files back as they were before the case (edited, added or removed)."""
    before = _sources(stack.path)
    yield
    after = _sources(stack.path)
    for relative in after.keys() - before.keys():
        (stack.path / relative).unlink()
    for relative, data in before.items():
        if after.get(relative) != data:
            (stack.path / relative).parent.mkdir(parents=True, exist_ok=True)
            (stack.path / relative).write_bytes(data)
    kept = {parent for relative in before for parent in relative.parents}
    for directory, _, _ in sorted(os.walk(stack.path), reverse=True):  # directories a case added, deepest first
        if Path(directory).relative_to(stack.path) not in kept and not os.listdir(directory):
            os.rmdir(directory)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def add_to_stacks(ws: Workspace, snippet: str) -> None:
    """Appends targets to //stacks (whose BUILD file loads the layer macros and stack_lock)."""
    build = ws.path / "stacks/BUILD.bazel"
    build.write_text(build.read_text() + "\n" + snippet)


def set_attribute(ws: Workspace, layer: str, attribute: str) -> None:
    """Adds `attribute = value` (source text) to a layer of //stacks."""
    edit(ws.path / "stacks/BUILD.bazel", f'name = "{layer}",', f'name = "{layer}",\n    {attribute},')


def lock_files(ws: Workspace) -> dict[str, str]:
    stacks = ws.path / "stacks"
    return {p.name: sha256_of(p) for p in sorted([*stacks.glob("pylock.*.toml"), stacks / "venvstacks_lock.json"])}


def failing(ws: Workspace, *args: str) -> str:
    """What the user reads (stderr, then stdout: `bazel test --test_output=errors` prints the test's log there)."""
    result = ws.bazel(*args, check=False)
    assert result.returncode != 0, f"bazel {' '.join(args)} succeeded"
    return result.stderr + result.stdout


def messages(output: str, quoted: str = "") -> set[str]:
    """The distinct error messages of rules_venvstacks: its fail() calls and the helper tool's `error:` lines (but
    not the lines of another tool's output it quotes, which start with `quoted`)."""
    return {
        line
        for line in output.splitlines()
        if line.startswith(("error: ", "Error in fail: ")) and not (quoted and line.startswith(quoted))
    }


def assert_one_error(output: str, *fragments: str, quoted: str = "") -> None:
    """One message (maybe printed more than once), holding every fragment; no Python traceback, no Starlark crash.

    (Bazel prints the Starlark stack of every fail() in a rule; that is not a crash: the message follows it.)"""
    assert not PYTHON_FRAME.search(output), f"a Python traceback:\n{output}"
    assert not STARLARK_CRASH.search(output), f"a Starlark error that is not a message:\n{output}"
    found = messages(output, quoted)
    assert len(found) == 1, f"expected one message, got {found}:\n{output}"
    message = found.pop()
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in the message {message!r}:\n{output}"


def assert_nothing_written(ws: Workspace, before: dict[str, str]) -> None:
    assert lock_files(ws) == before
    assert not list((ws.path / "stacks").glob("*.partial"))


def test_the_small_stack_runs_through_all_three_layers(stack: Workspace) -> None:
    assert (
        stack.bazel("run", "//stacks:hello").stdout
        == "hello from six 1.16.0 (framework) and packaging 24.2 (runtime)\n"
    )
    assert "4 tests pass" in stack.bazel("test", "//stacks:all").stdout  # the three layers' tests and lock_test


# Analysis: `bazel build` of the bad target fails before any action runs.


def test_unknown_lower_layer(stack: Workspace) -> None:
    edit(stack.path / "stacks/BUILD.bazel", 'frameworks = [":base"]', 'frameworks = [":nope"]')
    error = failing(stack, "build", "//stacks:hello")
    assert "in frameworks attribute of application_layer_rule rule //stacks:hello" in error
    assert "rule '//stacks:nope' does not exist" in error
    assert not PYTHON_FRAME.search(error)


def test_cycle_of_frameworks(stack: Workspace) -> None:
    add_to_stacks(
        stack,
        """
framework_layer(name = "loop_a", frameworks = [":loop_b"])

framework_layer(name = "loop_b", frameworks = [":loop_a"])
""",
    )
    error = failing(stack, "build", "//stacks:loop_a")
    assert "cycle in dependency graph" in error
    assert "//stacks:loop_a" in error and "//stacks:loop_b" in error
    assert not PYTHON_FRAME.search(error)


def test_layers_on_different_runtimes(stack: Workspace) -> None:
    add_to_stacks(
        stack,
        """
runtime_layer(name = "other_runtime", platforms = ["linux_x86_64"], python = "3.11")

framework_layer(name = "other", requirements = ["six==1.16.0"], runtime = ":other_runtime")

application_layer(name = "mixed", frameworks = [":base", ":other"], launch_module = "hello.py")
""",
    )
    assert_one_error(
        failing(stack, "build", "//stacks:mixed"),
        "//stacks:mixed: its frameworks sit on different runtimes (//stacks:base on //stacks:cpython, "
        "//stacks:other on //stacks:other_runtime); all layers of one stack must share one runtime layer",
    )


def test_frameworks_that_cannot_be_put_in_one_order(stack: Workspace) -> None:
    add_to_stacks(
        stack,
        """
framework_layer(name = "b", runtime = ":cpython")

framework_layer(name = "c", runtime = ":cpython")

framework_layer(name = "x", frameworks = [":b", ":c"])

framework_layer(name = "y", frameworks = [":c", ":b"])

application_layer(name = "app", frameworks = [":x", ":y"], launch_module = "hello.py")
""",
    )
    assert_one_error(
        failing(stack, "build", "//stacks:app"),
        "//stacks:app: its frameworks cannot be put in one order (C3): "
        "//stacks:x (over //stacks:b, //stacks:c) puts //stacks:b before //stacks:c, "
        "but //stacks:y (over //stacks:c, //stacks:b) puts //stacks:c before //stacks:b; "
        "reorder `frameworks` so they agree",
    )


def test_layer_over_a_disabled_layer(stack: Workspace) -> None:
    add_to_stacks(
        stack,
        """
framework_layer(name = "off", platforms = [], runtime = ":cpython")

application_layer(name = "on_off", frameworks = [":off"], launch_module = "hello.py")
""",
    )
    assert_one_error(
        failing(stack, "build", "//stacks:on_off"),
        "//stacks:on_off: it sits on ",
        "//stacks:off, which is disabled (`platforms = []`); give that layer platforms, or disable this one too",
    )


def test_running_a_disabled_layer(stack: Workspace) -> None:
    add_to_stacks(stack, 'framework_layer(name = "off", platforms = [], runtime = ":cpython")\n')
    error = failing(stack, "run", "//stacks:off")
    assert "//stacks:off is disabled (platforms = [])" in error
    assert not PYTHON_FRAME.search(error)


def test_both_runtime_and_frameworks(stack: Workspace) -> None:
    add_to_stacks(stack, 'framework_layer(name = "both", frameworks = [":base"], runtime = ":cpython")\n')
    assert_one_error(
        failing(stack, "build", "//stacks:both"),
        "//stacks:both: set exactly one of `runtime` (a runtime layer) or `frameworks` (framework layers)",
    )


def test_neither_runtime_nor_frameworks(stack: Workspace) -> None:
    add_to_stacks(stack, 'framework_layer(name = "neither", requirements = ["six"])\n')
    assert_one_error(
        failing(stack, "build", "//stacks:neither"),
        "//stacks:neither: set exactly one of `runtime` (a runtime layer) or `frameworks` (framework layers)",
    )


def test_runtime_listed_in_frameworks(stack: Workspace) -> None:
    add_to_stacks(stack, 'framework_layer(name = "on_runtime", frameworks = [":cpython"])\n')
    assert_one_error(
        failing(stack, "build", "//stacks:on_runtime"),
        "//stacks:on_runtime: ",
        "//stacks:cpython in `frameworks` is a runtime layer; "
        "list framework layers there (a runtime goes in `runtime`)",
    )


def test_runtime_that_is_a_framework(stack: Workspace) -> None:
    add_to_stacks(stack, 'framework_layer(name = "on_framework", runtime = ":base")\n')
    assert_one_error(
        failing(stack, "build", "//stacks:on_framework"),
        "//stacks:on_framework: `runtime` must be a runtime_layer, ",
        "//stacks:base is a framework layer",
    )


def test_platforms_wider_than_the_lower_layers(stack: Workspace) -> None:
    add_to_stacks(
        stack, 'framework_layer(name = "wider", platforms = ["linux_x86_64", "win_amd64"], runtime = ":cpython")\n'
    )
    assert_one_error(
        failing(stack, "build", "//stacks:wider"),
        "//stacks:wider: `platforms` may only narrow what its lower layers are built for (linux_x86_64); "
        "win_amd64 is not among them",
    )


def test_unknown_platform_name(stack: Workspace) -> None:
    add_to_stacks(stack, 'framework_layer(name = "plan9", platforms = ["plan9_mips"], runtime = ":cpython")\n')
    assert_one_error(
        failing(stack, "build", "//stacks:plan9"),
        "//stacks:plan9: unknown platform ",
        "plan9_mips",
        "; supported: linux_aarch64, linux_x86_64,",
    )


def test_python_that_is_not_a_version(stack: Workspace) -> None:
    add_to_stacks(stack, 'runtime_layer(name = "py_x", python = "3.11.x")\n')
    assert_one_error(
        failing(stack, "build", "//stacks:py_x"),
        """//stacks:py_x: python = "3.11.x" is not a CPython version 3.Y or 3.Y.Z (e.g. "3.11" or "3.11.13")""",
    )


def test_linux_target_that_is_not_glibc(stack: Workspace) -> None:
    add_to_stacks(stack, 'framework_layer(name = "musl", linux_target = "musl@1.2", runtime = ":cpython")\n')
    assert_one_error(
        failing(stack, "build", "//stacks:musl"),
        "//stacks:musl: linux_target \"musl@1.2\" is not of the form 'glibc@X.Y' (e.g. 'glibc@2.35')",
    )


def test_macosx_target_that_is_not_a_version(stack: Workspace) -> None:
    add_to_stacks(stack, 'framework_layer(name = "mac", macosx_target = "fourteen", runtime = ":cpython")\n')
    assert_one_error(
        failing(stack, "build", "//stacks:mac"),
        "//stacks:mac: macosx_target \"fourteen\" is not of the form 'X.Y' (e.g. '14.0')",
    )


def test_archive_format_that_is_not_supported(stack: Workspace) -> None:
    set_attribute(stack, "base", 'archive_format = "rar"')
    error = failing(stack, "build", "//stacks:base")
    assert "//stacks:base: invalid value in 'archive_format' attribute" in error
    assert "has to be one of 'tar.zst', 'tar.gz', 'tar.xz' or 'zip' instead of 'rar'" in error
    assert not PYTHON_FRAME.search(error)


def test_launch_module_that_does_not_exist(stack: Workspace) -> None:
    edit(stack.path / "stacks/BUILD.bazel", 'launch_module = "hello.py"', 'launch_module = "nope.py"')
    error = failing(stack, "build", "//stacks:hello")
    assert_one_error(
        error, '//stacks:hello: launch_module "nope.py" does not exist in stacks/; add the file or fix the name'
    )
    assert "Composing" not in error  # found while loading, before any action ran


def test_support_module_that_does_not_exist(stack: Workspace) -> None:
    set_attribute(stack, "hello", 'support_modules = ["helpers.py"]')
    assert_one_error(
        failing(stack, "build", "//stacks:hello"),
        '//stacks:hello: support_modules "helpers.py" does not exist in stacks/; add the file or fix the name',
    )


def test_launch_module_that_is_not_a_python_file(stack: Workspace) -> None:
    write(stack.path / "stacks/hello.txt", "print('hello')\n")
    edit(stack.path / "stacks/BUILD.bazel", 'launch_module = "hello.py"', 'launch_module = "hello.txt"')
    assert_one_error(
        failing(stack, "build", "//stacks:hello"),
        "//stacks:hello: `launch_module` stacks/hello.txt is not a .py file or the files of a package directory",
    )


def test_launch_module_whose_name_cannot_be_imported(stack: Workspace) -> None:
    shutil.copyfile(stack.path / "stacks/hello.py", stack.path / "stacks/my-app.py")
    edit(stack.path / "stacks/BUILD.bazel", 'launch_module = "hello.py"', 'launch_module = "my-app.py"')
    assert_one_error(
        failing(stack, "build", "//stacks:hello"),
        '//stacks:hello: `launch_module` stacks/my-app.py cannot be imported: "my-app" is not a Python module name',
    )


def test_support_module_named_like_the_launch_module(stack: Workspace) -> None:
    write(stack.path / "stacks/helpers/hello.py", "GREETING = 'hello'\n")
    set_attribute(stack, "hello", 'support_modules = ["helpers/hello.py"]')
    assert_one_error(
        failing(stack, "build", "//stacks:hello"),
        '//stacks:hello: support module "hello" (',
        "//stacks:helpers/hello.py) has the name of the launch module; rename one of them",
    )


def test_package_launch_module_without_its_init(stack: Workspace) -> None:
    write(stack.path / "stacks/greeter/__main__.py", "from greeter import words\n")
    write(stack.path / "stacks/greeter/words.py", "HELLO = 'hello'\n")
    edit(stack.path / "stacks/BUILD.bazel", 'launch_module = "hello.py"', 'launch_module = ":greeter"')
    add_to_stacks(stack, 'filegroup(name = "greeter", srcs = glob(["greeter/*.py"]))\n')
    assert_one_error(
        failing(stack, "build", "//stacks:hello"),
        "//stacks:hello: `launch_module` ",
        "//stacks:greeter must be one .py file or the files of one package directory (with its __init__.py)",
    )


def test_launch_module_without_files(stack: Workspace) -> None:
    edit(stack.path / "stacks/BUILD.bazel", 'launch_module = "hello.py"', 'launch_module = ":nothing"')
    add_to_stacks(stack, 'filegroup(name = "nothing", srcs = [])\n')
    assert_one_error(failing(stack, "build", "//stacks:hello"), "//stacks:hello: `launch_module` ", "has no files")


def test_stack_bundle_for_an_unknown_platform(stack: Workspace) -> None:
    edit(stack.path / "stacks/BUILD.bazel", '"stack_lock")', '"stack_bundle", "stack_lock")')
    add_to_stacks(stack, 'stack_bundle(name = "bundle", layers = [":hello"], platforms = ["plan9_mips"])\n')
    assert_one_error(
        failing(stack, "build", "//stacks:bundle"),
        'stack_bundle "bundle": unknown platform ',
        "plan9_mips",
        "; supported: linux_aarch64, linux_x86_64,",
    )


# Locking: `bazel run //stacks:lock` fails naming the layer and the fix, and writes nothing.


def test_malformed_requirement(stack: Workspace) -> None:
    before = lock_files(stack)
    edit(stack.path / "stacks/BUILD.bazel", 'requirements = ["six"]', 'requirements = ["six=="]')
    error = failing(stack, "run", "//stacks:lock")
    assert_one_error(error, "//stacks:hello: requirement 'six==' is not a valid PEP 508 requirement")
    assert "fix it in the layer's `requirements`" in error
    assert_nothing_written(stack, before)


def test_requirement_conflicting_with_a_framework_pin(stack: Workspace) -> None:
    before = lock_files(stack)
    edit(stack.path / "stacks/BUILD.bazel", 'requirements = ["six"]', 'requirements = ["six==1.15.0"]')
    assert_one_error(
        failing(stack, "run", "//stacks:lock"),
        "//stacks:hello: requirement 'six==1.15.0' conflicts with six==1.16.0, which lower layer framework-base "
        "provides on linux_x86_64; change the requirement (or the lower layer's) so they agree, then lock again",
    )
    assert_nothing_written(stack, before)


def test_requirement_with_only_an_sdist(stack: Workspace) -> None:
    before = lock_files(stack)
    edit(stack.path / "stacks/BUILD.bazel", 'requirements = ["six"]', 'requirements = ["sgmllib3k==1.0.0"]')
    error = failing(stack, "run", "//stacks:lock")
    assert_one_error(
        error, "//stacks:hello (linux_x86_64): uv could not resolve the layer's requirements:", quoted=UV_ERROR
    )
    assert "Because sgmllib3k==1.0.0 has no usable wheels" in error
    assert "Fix the `requirements` of //stacks:hello (or narrow its `platforms`), then lock again." in error
    assert_nothing_written(stack, before)


def test_requirement_that_no_index_has(stack: Workspace) -> None:
    before = lock_files(stack)
    edit(
        stack.path / "stacks/BUILD.bazel",
        'requirements = ["six"]',
        'requirements = ["rules-venvstacks-no-such-package==1.0"]',
    )
    error = failing(stack, "run", "//stacks:lock")
    assert_one_error(
        error, "//stacks:hello (linux_x86_64): uv could not resolve the layer's requirements:", quoted=UV_ERROR
    )
    words = " ".join(error.replace("|", " ").split())  # uv's lines are quoted `    | ...` and may wrap
    assert "Because rules-venvstacks-no-such-package was not found in the package registry" in words
    assert "Fix the `requirements` of //stacks:hello (or narrow its `platforms`), then lock again." in error
    assert_nothing_written(stack, before)


def test_frameworks_that_pin_different_versions(stack: Workspace) -> None:
    before = lock_files(stack)
    add_to_stacks(
        stack,
        """
framework_layer(name = "six_old", requirements = ["six==1.16.0"], runtime = ":cpython")

framework_layer(name = "six_new", requirements = ["six==1.17.0"], runtime = ":cpython")

application_layer(name = "diamond", frameworks = [":six_old", ":six_new"], launch_module = "hello.py")
""",
    )
    edit(stack.path / "stacks/BUILD.bazel", 'layers = [":hello"]', 'layers = [":hello", ":diamond"]')
    assert_one_error(
        failing(stack, "run", "//stacks:lock"),
        "//stacks:diamond: its lower layers install different versions of six on linux_x86_64 "
        "(framework-six_old: 1.16.0, framework-six_new: 1.17.0); only one can be imported. Make them agree "
        "(pin one version in both, or move six into a layer both sit on), then lock again",
    )
    assert_nothing_written(stack, before)


def test_two_layers_with_one_deployed_name(stack: Workspace) -> None:
    before = lock_files(stack)
    set_attribute(stack, "cpython", 'visibility = ["//other:__pkg__"]')
    write(
        stack.path / "other/BUILD.bazel",
        'load("@rules_venvstacks//rules:defs.bzl", "framework_layer")\n\n'
        'framework_layer(name = "base", requirements = ["six"], runtime = "//stacks:cpython", '
        'visibility = ["//visibility:public"])\n',
    )
    edit(stack.path / "stacks/BUILD.bazel", 'layers = [":hello"]', 'layers = [":hello", "//other:base"]')
    assert_one_error(
        failing(stack, "run", "//stacks:lock"),
        "//other:base and //stacks:base would both use the name 'framework-base'; rename one of them",
    )
    assert_nothing_written(stack, before)


def test_second_stack_lock_in_the_package(stack: Workspace) -> None:
    # Both would write stacks/venvstacks_lock.json: running one must not replace the other's index and pylock files.
    before = lock_files(stack)
    add_to_stacks(
        stack,
        """
framework_layer(name = "solo", requirements = ["six"], runtime = ":cpython")

stack_lock(name = "lock2", layers = [":solo"])
""",
    )
    assert_one_error(failing(stack, "run", "//stacks:lock2"), "//stacks:lock2", "venvstacks_lock.json")
    assert_nothing_written(stack, before)


def test_exclude_newer_that_is_not_a_time(stack: Workspace) -> None:
    before = lock_files(stack)
    set_attribute(stack, "lock", 'exclude_newer = "yesterday"')
    assert_one_error(
        failing(stack, "run", "//stacks:lock"),
        "//stacks:lock: exclude_newer 'yesterday' is not a date or an RFC 3339 time "
        "(e.g. '2025-06-30' or '2025-06-30T12:00:00Z'; a date means midnight UTC); durations such as '1 week' are "
        "refused",
    )
    assert_nothing_written(stack, before)


# Building after locking: the lock does not fit the layers (or the index cannot be used). Analysis still works, so
# the lock target always runs; building the affected layers fails naming it.


def test_layer_missing_from_the_lock(stack: Workspace) -> None:
    add_to_stacks(stack, 'framework_layer(name = "unlocked", requirements = ["six"], runtime = ":cpython")\n')
    assert_one_error(
        failing(stack, "build", "//stacks:unlocked"),
        "//stacks:unlocked has no entry in any lock index: list it (or a layer above it) in a stack_lock target, "
        "register that target's index with `venvstacks.lock_file` in MODULE.bazel, and `bazel run` the lock target",
    )


def test_lock_that_no_longer_matches_the_requirements(stack: Workspace) -> None:
    archive = stack.path / "bazel-bin/stacks/hello.layer/app-hello-linux_x86_64.tar.zst"
    assert archive.exists()
    edit(stack.path / "stacks/BUILD.bazel", 'requirements = ["six"]', 'requirements = ["six", "packaging"]')
    assert_one_error(
        failing(stack, "build", "//stacks:hello"),
        f"//stacks:hello changed since it was locked (requirements differ): {RELOCK}",
    )
    assert not archive.exists()


def test_lock_test_fails_while_the_lock_is_stale(stack: Workspace) -> None:
    edit(stack.path / "stacks/BUILD.bazel", 'requirements = ["six"]', 'requirements = ["six", "packaging"]')
    output = failing(stack, "test", "--test_output=errors", "//stacks:lock_test")
    assert "error: the lock of //stacks:lock is stale:" in output
    assert f"  - //stacks:hello changed since it was locked (requirements differ): {RELOCK}" in output
    assert "run `bazel run //stacks:lock` and commit what it writes" in output
    assert not PYTHON_FRAME.search(output)


def test_lock_test_of_a_lock_never_run(stack: Workspace) -> None:
    set_attribute(stack, "hello", 'visibility = ["//other:__pkg__"]')
    write(
        stack.path / "other/BUILD.bazel",
        'load("@rules_venvstacks//rules:defs.bzl", "stack_lock")\n\n'
        'stack_lock(name = "lock", layers = ["//stacks:hello"])\n',
    )
    output = failing(stack, "test", "--test_output=errors", "//other:lock_test")
    assert "error: the lock of //other:lock is stale:" in output
    assert "  - //other:lock has not written its index yet" in output
    assert "run `bazel run //other:lock` and commit what it writes" in output
    assert not PYTHON_FRAME.search(output)


def test_lock_test_after_exclude_newer_changed(stack: Workspace) -> None:
    set_attribute(stack, "lock", 'exclude_newer = "2025-06-30"')
    output = failing(stack, "test", "--test_output=errors", "//stacks:lock_test")
    assert '  - exclude_newer is "2025-06-30" but the index was written with ""' in output
    assert "run `bazel run //stacks:lock` and commit what it writes" in output
    assert not PYTHON_FRAME.search(output)


def test_pylock_file_edited_by_hand(stack: Workspace) -> None:
    pylock = stack.path / "stacks/pylock.app-hello.toml"
    pylock.write_text(pylock.read_text() + "# edited\n")
    assert_one_error(
        failing(stack, "build", "//stacks:hello"),
        "pylock.app-hello.toml changed after //stacks:lock wrote the lock index; "
        "run `bazel run //stacks:lock` instead of editing lock files",
    )


def test_lock_test_fails_on_a_pylock_file_edited_by_hand(stack: Workspace) -> None:
    pylock = stack.path / "stacks/pylock.app-hello.toml"
    pylock.write_text(pylock.read_text() + "# edited\n")
    output = failing(stack, "test", "--test_output=errors", "//stacks:lock_test")
    assert "  - stacks/pylock.app-hello.toml changed after //stacks:lock locked it" in output
    assert "run `bazel run //stacks:lock` and commit what it writes" in output
    assert not PYTHON_FRAME.search(output)


def test_pylock_file_deleted(stack: Workspace) -> None:
    (stack.path / "stacks/pylock.app-hello.toml").unlink()
    assert_one_error(failing(stack, "build", "//stacks:hello"), f"pylock.app-hello.toml is missing: {RELOCK}")


def test_wheel_whose_sha256_does_not_match(stack: Workspace) -> None:
    edit(stack.path / "stacks/venvstacks_lock.json", SIX_SHA256, "0" * 64)
    assert_one_error(
        failing(stack, "build", "//stacks:base"),
        "wheel six-1.16.0-py2.py3-none-any.whl from https://files.pythonhosted.org/",
        f"has sha256 {SIX_SHA256}, but {'0' * 64} was expected",
        "The index serves a different file than when //stacks:lock was locked: check why, then lock again "
        "(`bazel run //stacks:lock`).",
    )


def test_lock_index_of_another_version(stack: Workspace) -> None:
    index = stack.path / "stacks/venvstacks_lock.json"
    edit(index, '"version": 2', '"version": 1')
    assert_one_error(
        failing(stack, "build", "//stacks:cpython"),
        "//stacks:cpython has no entry in a lock index that can be read: //stacks:venvstacks_lock.json has index "
        f"version 1, this rules_venvstacks reads version 2: {RELOCK}",
    )
    stack.bazel("run", "//stacks:lock")  # the lock target still runs, and repairs the index
    assert json.loads(index.read_text())["version"] == 2
    stack.bazel("build", "//stacks:hello")


def test_lock_index_that_is_not_json(stack: Workspace) -> None:
    index = stack.path / "stacks/venvstacks_lock.json"
    index.write_text("<<<<<<< HEAD\n" + index.read_text())  # a merge conflict left in it
    assert_one_error(
        failing(stack, "build", "//stacks:cpython"),
        "//stacks:cpython has no entry in a lock index that can be read: //stacks:venvstacks_lock.json is not a "
        "lock index (not JSON, or no `layers`): `bazel run` the stack_lock target of //stacks again",
    )
    stack.bazel("run", "//stacks:lock")  # the lock target still runs, and repairs the index
    assert json.loads(index.read_text())["layers"].keys() == {"stacks:cpython", "stacks:base", "stacks:hello"}


def test_lock_index_with_an_entry_missing_a_field(stack: Workspace) -> None:
    index = stack.path / "stacks/venvstacks_lock.json"
    data = json.loads(index.read_text())
    del data["layers"]["stacks:hello"]["install_target"]  # edited by hand, or written by a broken tool
    index.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    assert_one_error(
        failing(stack, "build", "//stacks:hello"),
        "the entry of //stacks:hello in //stacks:venvstacks_lock.json lacks install_target: "
        "`bazel run //stacks:lock` to write it again",
    )
    stack.bazel("run", "//stacks:lock")  # the lock target still runs, and repairs the index


def test_layer_in_two_lock_indexes(stack: Workspace) -> None:
    write(stack.path / "other/BUILD.bazel", "")
    shutil.copyfile(stack.path / "stacks/venvstacks_lock.json", stack.path / "other/venvstacks_lock.json")
    module = stack.path / "MODULE.bazel"
    module.write_text(module.read_text() + 'venvstacks.lock_file(path = "//other:venvstacks_lock.json")\n')
    assert_one_error(
        failing(stack, "build", "//stacks:cpython"),
        "//stacks:cpython is in two lock indexes (//stacks:venvstacks_lock.json and //other:venvstacks_lock.json); "
        "keep it in one stack_lock",
    )


def test_lock_index_in_a_directory_that_is_no_package(stack: Workspace) -> None:
    module = stack.path / "MODULE.bazel"
    module.write_text(module.read_text() + 'venvstacks.lock_file(path = "//nowhere:venvstacks_lock.json")\n')
    error = failing(stack, "build", "//stacks:hello")
    assert "Unable to load package for //nowhere:venvstacks_lock.json: BUILD file not found" in error
    assert "Add a BUILD file to a directory to mark it as a package." in error
    assert not PYTHON_FRAME.search(error)


def test_python_release_the_runtime_table_does_not_know(stack: Workspace) -> None:
    edit(stack.path / "stacks/BUILD.bazel", 'python = "3.11",', 'python = "3.11.2",')
    stack.bazel("run", "//stacks:lock")  # uv resolves for 3.11: the lock does not need the runtime
    assert_one_error(
        failing(stack, "build", "//stacks:cpython"),
        "no python-build-standalone archive of CPython 3.11.2 is known for linux_x86_64 (the table knows 3.11.",
        "give the runtime layer a `runtime_archive`, put one in the directory named by VENVSTACKS_LOCAL_RUNTIMES, or "
        "use a version the table knows",
    )
    stack.bazel("run", "//stacks:lock")  # and still runs with the runtime missing


def test_runtime_archive_whose_name_has_no_version(stack: Workspace) -> None:
    make_fixture_runtime(stack.path / "stacks", "linux_x86_64").rename(stack.path / "stacks/runtime.tar.gz")
    set_attribute(stack, "cpython", 'runtime_archive = "runtime.tar.gz"')
    assert_one_error(
        failing(stack, "build", "//stacks:cpython"),
        "cpython: cannot tell which CPython 3.11.Z runtime.tar.gz (@@//stacks:runtime.tar.gz) holds; "
        'give the layer the exact version, e.g. python = "3.11.0"',
    )


def test_target_platform_the_layers_are_not_built_for(stack: Workspace) -> None:
    error = failing(stack, "build", "--platforms=@rules_venvstacks//platforms:linux_aarch64", "//stacks:hello")
    assert "Target //stacks:hello is incompatible and cannot be built, but was explicitly requested." in error
    assert "//stacks:cpython (" in error  # the layer limited to linux_x86_64, in the dependency chain
    assert "didn't satisfy constraint @@platforms//:incompatible" in error
    assert not PYTHON_FRAME.search(error)


def test_target_platform_rules_venvstacks_does_not_support(stack: Workspace) -> None:
    add_to_stacks(
        stack,
        """
runtime_layer(name = "anywhere", python = "3.11")

platform(name = "plan9", constraint_values = [])
""",
    )
    assert_one_error(
        failing(stack, "build", "--platforms=//stacks:plan9", "//stacks:anywhere"),
        "//stacks:anywhere: the target platform is not one rules_venvstacks supports; "
        "use --platforms=@rules_venvstacks//platforms:<name>",
    )


# Package indexes (declared in MODULE.bazel, used by layers)

INDEXES = """
venvstacks.index(name = "mirror-a", explicit = True, url = "https://a.invalid/simple")
venvstacks.index(name = "mirror-b", explicit = True, url = "https://b.invalid/simple")
"""


def declare_indexes(ws: Workspace) -> None:
    module = ws.path / "MODULE.bazel"
    module.write_text(module.read_text() + INDEXES)


def test_package_index_that_module_bazel_does_not_declare(stack: Workspace) -> None:
    declare_indexes(stack)
    set_attribute(stack, "base", 'package_indexes = {"six": "nowhere"}')
    assert_one_error(
        failing(stack, "build", "//stacks:base"),
        '//stacks:base: `package_indexes` names the package index "nowhere", which MODULE.bazel does not declare '
        '(declared: mirror-a, mirror-b); add `venvstacks.index(name = "nowhere", url = ...)` there, or fix the name',
    )


def test_lower_layers_taking_a_package_from_different_indexes(stack: Workspace) -> None:
    declare_indexes(stack)
    add_to_stacks(
        stack,
        """
framework_layer(name = "from_a", package_indexes = {"six": "mirror-a"}, requirements = ["six"], runtime = ":cpython")

framework_layer(name = "from_b", package_indexes = {"six": "mirror-b"}, requirements = ["six"], runtime = ":cpython")

application_layer(name = "both", frameworks = [":from_a", ":from_b"], launch_module = "hello.py")
""",
    )
    assert_one_error(
        failing(stack, "build", "//stacks:both"),
        "//stacks:both: its lower layers take six from different indexes (//stacks:from_a: mirror-a, "
        '//stacks:from_b: mirror-b); add `index_overrides = {"mirror-b": "mirror-a"}` to accept mirror-a',
    )


def test_index_override_that_overrides_nothing(stack: Workspace) -> None:
    declare_indexes(stack)
    set_attribute(stack, "hello", 'index_overrides = {"mirror-a": "mirror-b"}')
    assert_one_error(
        failing(stack, "build", "//stacks:hello"),
        '//stacks:hello: `index_overrides` = {"mirror-a": "mirror-b"} overrides nothing (no lower layer takes a '
        "package from mirror-a where this layer takes it from mirror-b); remove it",
    )


def test_layer_taking_a_package_from_another_index_than_its_lower_layer(stack: Workspace) -> None:
    declare_indexes(stack)
    set_attribute(stack, "base", 'package_indexes = {"six": "mirror-a"}')
    set_attribute(stack, "hello", 'package_indexes = {"six": "mirror-b"}')
    assert_one_error(
        failing(stack, "build", "//stacks:hello"),
        "//stacks:hello: `package_indexes` takes six from mirror-b, but its lower layer //stacks:base takes it from "
        'mirror-a; add `index_overrides = {"mirror-a": "mirror-b"}` to accept that',
    )
