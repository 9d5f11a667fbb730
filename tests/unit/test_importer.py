"""Tests of the venvstacks importer (stacktool.importer*): spec -> BUILD text key by key, the messages of refused and
dropped keys, idempotence, hand-written targets, module placement and MODULE.bazel lines. Real files in tmp_path."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
from stacktool.cli import main
from stacktool.errors import UserError
from stacktool.importer import Outcome, Request, import_venvstacks, report
from stacktool.importer_layers import dynlib_patterns
from stacktool.importer_render import BEGIN, END

RUNTIME = """
[[runtimes]]
name = "cpython"
python_implementation = "cpython@3.11.13"
requirements = []
"""
APP = """
[[applications]]
name = "app"
launch_module = "app.py"
runtime = "cpython"
requirements = []
"""
ISSUE_11 = "is not supported yet (rules_venvstacks issue #11)"
INDEX_FIX = "remove it, or re-run the importer with --default-index to lock against the default index (PyPI)"


@pytest.fixture(autouse=True)
def no_local_runtimes(monkeypatch):
    monkeypatch.delenv("VENVSTACKS_LOCAL_RUNTIMES", raising=False)


def project(tmp_path: Path, spec: str, files: tuple[str, ...] = ("app.py",)) -> Path:
    """A venvstacks project: the spec and the module files it names (each a small module)."""
    ws = tmp_path / "ws"
    ws.mkdir(exist_ok=True)
    (ws / "venvstacks.toml").write_text(textwrap.dedent(spec))
    for name in files:
        path = ws / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"print({name!r})\n")
    return ws


def run(ws: Path, package: str | None = "stacks", default_index: bool = False) -> Outcome:
    return import_venvstacks(Request(ws / "venvstacks.toml", ws, package, default_index))


def block(ws: Path, package: str = "stacks") -> str:
    """The generated targets (the block without its marker and header lines)."""
    text = (ws / package / "BUILD.bazel").read_text()
    inner = text[text.index(BEGIN) : text.index(END)]
    return inner[inner.index("load(") :].strip()


def target(ws: Path, name: str) -> str:
    """One generated target's text."""
    text = block(ws)
    start = text.index(f'    name = "{name}",')
    start = text.rindex("\n", 0, start - 1) + 1
    return text[start : text.index("\n)", start) + 2]


def files_of(ws: Path) -> dict[str, bytes]:
    return {str(p.relative_to(ws)): p.read_bytes() for p in sorted(ws.rglob("*")) if p.is_file()}


def refused(ws: Path, **kwargs: bool) -> str:
    """The error of an import that is refused, after checking that it wrote nothing."""
    before = files_of(ws)
    with pytest.raises(UserError) as error:
        run(ws, **kwargs)
    assert files_of(ws) == before
    return str(error.value)


def test_a_stack_with_every_kind_of_layer(tmp_path):
    ws = project(
        tmp_path,
        RUNTIME
        + """
        [[frameworks]]
        name = "base"
        runtime = "cpython"
        requirements = ["six==1.17.0"]

        [[applications]]
        name = "app"
        launch_module = "app.py"
        frameworks = ["base"]
        requirements = ["six"]

        [tool.uv]
        exclude-newer = "2025-06-30"
        """,
    )
    outcome = run(ws)
    assert block(ws) == textwrap.dedent("""\
        load("@rules_venvstacks//rules:defs.bzl", "application_layer", "framework_layer", "runtime_layer", "stack_lock")

        runtime_layer(
            name = "cpython",
            python = "3.11.13",
            requirements = [],
        )

        framework_layer(
            name = "base",
            requirements = ["six==1.17.0"],
            runtime = ":cpython",
        )

        application_layer(
            name = "app",
            frameworks = [":base"],
            launch_module = "app.py",
            requirements = ["six"],
        )

        stack_lock(
            name = "lock",
            exclude_newer = "2025-06-30",
            layers = [":app"],
        )""")
    build = (ws / "stacks/BUILD.bazel").read_text()
    assert build.startswith(
        f"{BEGIN}: generated from a venvstacks spec by\n"
        "#   bazel run @rules_venvstacks//tools:import_venvstacks -- venvstacks.toml --package stacks\n"
    )
    assert build.endswith(f"\n{END}\n")
    assert (ws / "stacks/app.py").read_text() == "print('app.py')\n"
    assert outcome.warnings == []
    assert report(outcome) == [
        "wrote MODULE.bazel",
        "wrote stacks/BUILD.bazel",
        "wrote stacks/app.py",
        'MODULE.bazel: added bazel_dep(name = "rules_venvstacks")',
        'MODULE.bazel: added venvstacks = use_extension("@rules_venvstacks//rules:extensions.bzl", "venvstacks")',
        'MODULE.bazel: added venvstacks.lock_file(path = "//stacks:venvstacks_lock.json")',
        "next: bazel run //stacks:lock, then bazel build //stacks:all and bazel test //stacks:all",
    ]


# (key as the spec writes it on the runtime, the attribute line in the BUILD file, or None: no attribute)
RUNTIME_KEYS = [
    ('python_implementation = "cpython@3.12.11"', '    python = "3.12.11",'),
    ('python_implementation = "cpython@3.12"', '    python = "3.12",'),
    ('requirements = ["packaging==24.2"]', '    requirements = ["packaging==24.2"],'),
    ('requirements = ["a", "b; sys_platform == \'win32\'"]', "        \"b; sys_platform == 'win32'\","),
    ("versioned = true", "    versioned = True,"),
    ("versioned = false", None),
    ('platforms = ["linux_x86_64"]', '    platforms = ["linux_x86_64"],'),
    ("platforms = []", "    platforms = [],"),
    ('linux_target = "glibc@2.35"', '    linux_target = "glibc@2.35",'),
    ('linux_target = "glibc"', None),  # venvstacks' default libc version, which is the rules' default too
    ('macosx_target = "14.0"', '    macosx_target = "14.0",'),
    ('macosx_target = "14"', '    macosx_target = "14",'),
    ('dynlib_exclude = ["*.so"]', '    dynlib_exclude = ["*.so"],'),
    ("package_indexes = {}", None),  # empty: nothing to drop
    ("priority_indexes = []", None),
]


@pytest.mark.parametrize(("key", "line"), RUNTIME_KEYS)
def test_runtime_key(tmp_path, key, line):
    spec = RUNTIME.replace("requirements = []\n", "") if key.startswith("requirements") else RUNTIME
    if key.startswith("python_implementation"):
        spec = spec.replace('python_implementation = "cpython@3.11.13"\n', "")
    ws = project(tmp_path, spec + key + "\n", files=())
    outcome = run(ws)
    text = target(ws, "cpython")
    if line is None:
        assert text.splitlines()[2:-1] == ['    python = "3.11.13",', "    requirements = [],"]
    else:
        assert line in text.splitlines()
    assert outcome.warnings == []


@pytest.mark.parametrize(
    ("patterns", "converted"),
    [
        (["*.so"], ["*.so"]),
        (["libfoo.so.1"], ["libfoo.so.1", "*/libfoo.so.1"]),
        (["**/libfoo.so"], ["libfoo.so", "*/libfoo.so"]),
        (["pkg.libs/*.so", "*.dylib"], ["pkg.libs/*.so", "*/pkg.libs/*.so", "*.dylib"]),
    ],
)
def test_dynlib_exclude_matches_the_end_of_the_path_as_in_venvstacks(patterns, converted):
    assert dynlib_patterns(patterns) == converted


def test_framework_and_application_keys(tmp_path):
    ws = project(
        tmp_path,
        RUNTIME
        + """
        [[frameworks]]
        name = "base"
        runtime = "cpython"
        requirements = []
        versioned = true
        linux_target = "glibc@2.31"
        macosx_target = "13.3"
        dynlib_exclude = ["libx.so"]
        platforms = ["linux_x86_64", "macosx_arm64"]

        [[applications]]
        name = "app"
        launch_module = "app.py"
        support_modules = ["util.py", "helpers/shared.py"]
        frameworks = ["base"]
        requirements = ["six"]
        versioned = true
        platforms = ["linux_x86_64"]
        """,
        files=("app.py", "util.py", "helpers/shared.py"),
    )
    run(ws)
    assert target(ws, "base") == textwrap.dedent("""\
        framework_layer(
            name = "base",
            dynlib_exclude = [
                "libx.so",
                "*/libx.so",
            ],
            linux_target = "glibc@2.31",
            macosx_target = "13.3",
            platforms = [
                "linux_x86_64",
                "macosx_arm64",
            ],
            requirements = [],
            runtime = ":cpython",
            versioned = True,
        )""")
    assert target(ws, "app") == textwrap.dedent("""\
        application_layer(
            name = "app",
            frameworks = [":base"],
            launch_module = "app.py",
            platforms = ["linux_x86_64"],
            requirements = ["six"],
            support_modules = [
                "helpers/shared.py",
                "util.py",
            ],
            versioned = True,
        )""")  # support modules sorted as venvstacks sorts them
    assert (ws / "stacks/helpers/shared.py").is_file()
    assert (ws / "stacks/util.py").is_file()


def test_frameworks_over_frameworks_keep_the_declared_order(tmp_path):
    """A diamond: the BUILD file lists `frameworks` as the spec does; the rules order them (C3) as venvstacks does."""
    layers = "".join(
        f'\n[[frameworks]]\nname = "{name}"\n{over}\nrequirements = []\n'
        for name, over in [
            ("a", 'runtime = "cpython"'),
            ("b", 'frameworks = ["a"]'),
            ("c", 'frameworks = ["a"]'),
            ("d", 'frameworks = ["c", "b"]'),
            ("e", 'frameworks = ["b"]'),
        ]
    )
    app = APP.replace('runtime = "cpython"', 'frameworks = ["d", "e"]')  # C3: d, c, e, b, a
    ws = project(tmp_path, RUNTIME + layers + app)
    run(ws)
    assert '    frameworks = [\n        ":c",\n        ":b",\n    ],' in target(ws, "d")
    assert '    frameworks = [\n        ":d",\n        ":e",\n    ],' in target(ws, "app")
    assert '    layers = [":app"],' in target(ws, "lock")


def test_venvstacks_minimal_project(tmp_path):
    """venvstacks' own tests/minimal_project/venvstacks.toml (0.8.0), verbatim but for its comments: a diamond, a
    name with `@`, a disabled app, an app on the runtime, and index settings (dropped with --default-index)."""
    ws = project(
        tmp_path,
        """\
        [[runtimes]]
        name = "cpython-3.11"
        python_implementation = "cpython@3.11.11"
        requirements = []
        package_indexes = { venvstacks = "pypi-named" }

        [[frameworks]]
        name = "layerA"
        runtime = "cpython-3.11"
        requirements = []
        priority_indexes = ["pypi-named"]

        [[frameworks]]
        name = "layerB"
        frameworks = ["layerA"]
        requirements = []

        [[frameworks]]
        name = "layerC"
        frameworks = ["layerA"]
        requirements = []

        [[frameworks]]
        name = "layerD"
        frameworks = ["layerB", "layerC"]
        requirements = []

        [[frameworks]]
        name = "layerE"
        frameworks = ["layerB"]
        requirements = []

        [[frameworks]]
        name = "layerF@1"
        frameworks = ["layerE"]
        requirements = []

        [[applications]]
        name = "empty"
        launch_module = "empty.py"
        frameworks = ["layerD", "layerF@1"]
        requirements = []
        package_indexes = { venvstacks = "pypi-named" }

        [[applications]]
        name = "no-framework"
        launch_module = "empty.py"
        runtime = "cpython-3.11"
        requirements = []

        [[applications]]
        name = "disabled"
        launch_module = "empty.py"
        runtime = "cpython-3.11"
        requirements = []
        platforms = []

        [[tool.uv.index]]
        name = "pypi-named"
        url = "https://pypi.org/simple/"
        explicit = true
        """,
        files=("empty.py",),
    )
    assert refused(ws).splitlines() == [
        "4 problems, nothing was written:",
        f"  - venvstacks.toml: runtime 'cpython-3.11': key 'package_indexes' (the index of each package) {ISSUE_11}; "
        + INDEX_FIX,
        f"  - venvstacks.toml: framework 'layerA': key 'priority_indexes' (indexes to try first) {ISSUE_11}; "
        + INDEX_FIX,
        f"  - venvstacks.toml: application 'empty': key 'package_indexes' (the index of each package) {ISSUE_11}; "
        + INDEX_FIX,
        f"  - venvstacks.toml: [tool.uv]: key 'index' (package index configuration) {ISSUE_11}; " + INDEX_FIX,
    ]
    outcome = run(ws, default_index=True)
    assert len(outcome.warnings) == 5  # the four index keys, and the runtime release the table does not have
    assert all("dropped (--default-index)" in w for w in outcome.warnings[:4])
    assert '    frameworks = [":layerE"],' in target(ws, "layerF@1")
    assert '    frameworks = [\n        ":layerD",\n        ":layerF@1",\n    ],' in target(ws, "empty")
    assert "    platforms = []," in target(ws, "disabled")
    assert '    layers = [\n        ":empty",\n        ":no-framework",\n    ],' in target(ws, "lock")
    assert '    python = "3.11.11",' in target(ws, "cpython-3.11")


def test_legacy_keys(tmp_path):
    spec = RUNTIME.replace("python_implementation", "fully_versioned_name") + 'build_requirements = ["setuptools"]\n'
    ws = project(tmp_path, spec + APP + "build_requirements = []\n")
    outcome = run(ws)
    assert outcome.warnings == [
        "venvstacks.toml: runtime 'cpython': legacy key 'fully_versioned_name' converted to 'python_implementation' "
        "(venvstacks warns the same); rename it in the spec",
        "venvstacks.toml: runtime 'cpython': legacy key 'build_requirements' dropped, as venvstacks drops it (layers "
        "install wheels only); remove it",
        "venvstacks.toml: application 'app': legacy key 'build_requirements' dropped, as venvstacks drops it (layers "
        "install wheels only); remove it",
    ]
    assert '    python = "3.11.13",' in target(ws, "cpython")


def test_legacy_and_current_python_key_together_are_refused(tmp_path):
    ws = project(tmp_path, RUNTIME + 'fully_versioned_name = "cpython@3.11.13"\n', files=())
    assert refused(ws) == (
        "venvstacks.toml: runtime 'cpython': sets both 'python_implementation' and the obsolete "
        "'fully_versioned_name' (venvstacks refuses both too); remove 'fully_versioned_name' (nothing was written)"
    )


FRAMEWORK = '\n[[frameworks]]\nname = "fw"\nruntime = "cpython"\nrequirements = []\n'
# (what the spec adds to RUNTIME + APP, the error message without the "venvstacks.toml: " prefix)
REFUSED = [
    (
        'package_indexes = { torch = "pytorch-cpu" }',
        f"application 'app': key 'package_indexes' (the index of each package) {ISSUE_11}; {INDEX_FIX}",
    ),
    (
        'priority_indexes = ["pytorch-cpu"]',
        f"application 'app': key 'priority_indexes' (indexes to try first) {ISSUE_11}; {INDEX_FIX}",
    ),
    (
        '[[tool.uv.index]]\nname = "mirror"\nurl = "https://example.invalid/simple"',
        f"[tool.uv]: key 'index' (package index configuration) {ISSUE_11}; {INDEX_FIX}",
    ),
    (
        '[tool.uv.sources]\ntorch = { index = "mirror" }',
        f"[tool.uv]: key 'sources' (package index configuration) {ISSUE_11}; {INDEX_FIX}",
    ),
    (
        '[tool.uv]\nindex-url = "https://example.invalid/simple"',
        f"[tool.uv]: key 'index-url' (package index configuration) {ISSUE_11}; {INDEX_FIX}",
    ),
    (
        '[tool.uv]\noverride-dependencies = ["six==1.16.0"]',
        "[tool.uv]: key 'override-dependencies' is not supported: the lock passes uv no settings but exclude-newer, "
        "and this one changes what is locked; remove it (pin versions in the layers' requirements instead)",
    ),
    (
        '[tool.uv]\nexclude-newer = "last week"',
        "[tool.uv]: key 'exclude-newer' = 'last week' is not a date or an RFC 3339 time (venvstacks needs one); fix it",
    ),
    ("colour = 'blue'", "application 'app': unknown key 'colour' for application layers (venvstacks refuses it "
     "too); remove it"),
    ('platforms = ["amiga"]', "application 'app': key 'platforms' has invalid target platform 'amiga' (expected one of "
     "['linux_aarch64', 'linux_x86_64', 'macosx_arm64', 'macosx_x86_64', 'win_amd64', 'win_arm64'])"),
    ('linux_target = "musl@1.2"', "application 'app': key 'linux_target' = 'musl@1.2': only glibc targets are "
     "supported (as in venvstacks); use 'glibc@X.Y'"),
    ('linux_target = "glibc@235"', "application 'app': key 'linux_target' = 'glibc@235' is not of the form "
     "'glibc@X.Y'; fix it"),
    ('macosx_target = "sonoma"', "application 'app': key 'macosx_target' = 'sonoma' is not a macOS version 'X' or "
     "'X.Y'; fix it"),
    ("versioned = 'yes'", "application 'app': key 'versioned' must be true or false, not 'yes'"),
    ('frameworks = ["fw"]', "application 'app': sets both 'runtime' and 'frameworks' (venvstacks refuses both too); "
     "keep one"),
    ('support_modules = ["app.py"]', "application 'app': launch module 'app' has the name of a support module (as "
     "venvstacks, refused); rename one"),
    ('support_modules = ["missing.py"]', "application 'app': key 'support_modules': 'missing.py' does not exist "
     "({ws}/missing.py; paths are relative to the spec file); fix the path"),
]  # fmt: skip


@pytest.mark.parametrize(("added", "message"), REFUSED, ids=[m.split(":")[0] + ":" + a[:30] for a, m in REFUSED])
def test_refused_key(tmp_path, added, message):
    ws = project(tmp_path, RUNTIME + FRAMEWORK + APP + added + "\n")
    assert refused(ws) == "venvstacks.toml: " + message.format(ws=ws) + " (nothing was written)"


# (the whole spec after RUNTIME, the error message without the "venvstacks.toml: " prefix)
REFUSED_LAYERS = [
    (APP.replace('runtime = "cpython"', 'runtime = "cpython-3.12"'),
     "application 'app': key 'runtime' names unknown runtime 'cpython-3.12'; name a [[runtimes]] layer"),
    (FRAMEWORK.replace('runtime = "cpython"', 'frameworks = ["later"]') + FRAMEWORK.replace('"fw"', '"later"'),
     "framework 'fw': key 'frameworks' names unknown framework 'later'; name a [[frameworks]] layer defined above "
     "this one (venvstacks allows no forward references)"),
    (APP.replace('runtime = "cpython"\n', ""),
     "application 'app': sits on nothing: set 'runtime' or 'frameworks' (venvstacks requires one); add it"),
    (APP.replace('runtime = "cpython"', 'frameworks = []'),
     "application 'app': sits on nothing: set 'runtime' or 'frameworks' (venvstacks requires one); add it"),
    (APP.replace('requirements = []\n', ""),
     "application 'app': key 'requirements' is missing (venvstacks requires it); add it (requirements = [] for none)"),
    (APP.replace("requirements = []", 'requirements = ["six >> 1"]'),
     "application 'app': requirement 'six >> 1' is not a valid PEP 508 requirement ("),
    (APP.replace('launch_module = "app.py"\n', ""),
     "application 'app': key 'launch_module' is missing or not a path (venvstacks requires it); add it"),
    (APP.replace("app.py", "app.txt"),
     "application 'app': key 'launch_module': 'app.txt' does not exist ({ws}/app.txt; paths are relative to the spec "
     "file); fix the path"),
    (APP + APP, "application 'app': is defined twice: both would be the Bazel target :app; rename one of them"),
    (APP.replace('"app"', '"cpython"', 1),
     "application 'cpython': has the name of runtime 'cpython': both would be the Bazel target :cpython; rename one "
     "of them"),
    (APP.replace('"app"', '"lock"', 1),
     "stack_lock 'lock' would make target :lock, as application_layer 'lock' does; rename the layer"),
    (APP.replace('"app"', '"my app"', 1),
     "application 'my app': this name cannot be a Bazel target name; rename it (letters, digits and . _ - @ +)"),
    ('[[applications]]\nlaunch_module = "app.py"\nruntime = "cpython"\nrequirements = []\n',
     "[[applications]] entry 1: has no 'name' (venvstacks requires one); add it"),
    (FRAMEWORK.replace('runtime = "cpython"', 'frameworks = ["fw"]'),
     "framework 'fw': key 'frameworks' names unknown framework 'fw'; name a [[frameworks]] layer defined above this "
     "one (venvstacks allows no forward references)"),
    (FRAMEWORK + FRAMEWORK.replace('"fw"', '"fw2"')
     + FRAMEWORK.replace('"fw"', '"x"').replace('runtime = "cpython"', 'frameworks = ["fw", "fw2"]')
     + FRAMEWORK.replace('"fw"', '"y"').replace('runtime = "cpython"', 'frameworks = ["fw2", "fw"]')
     + APP.replace('runtime = "cpython"', 'frameworks = ["x", "y"]'),
     "application 'app': its frameworks cannot be put in one order (C3, as venvstacks; remaining: [['fw', 'fw2'], "
     "['fw2', 'fw']]); reorder 'frameworks' so the orders agree"),
    ('\n[[runtimes]]\nname = "other"\npython_implementation = "cpython@3.12.11"\nrequirements = []\n' + FRAMEWORK
     + FRAMEWORK.replace('"fw"', '"fw2"').replace('"cpython"', '"other"')
     + APP.replace('runtime = "cpython"', 'frameworks = ["fw", "fw2"]'),
     "application 'app': its frameworks sit on different runtimes ('fw' on 'cpython', 'fw2' on 'other'); use "
     "frameworks of one runtime"),
    (FRAMEWORK.replace('requirements = []', 'requirements = []\nplatforms = []') + APP.replace(
        'runtime = "cpython"', 'frameworks = ["fw"]\nplatforms = ["linux_x86_64"]'),
     "application 'app': key 'platforms' has target platforms not supported by lower layers: ['linux_x86_64'] (it "
     "sits on disabled framework 'fw'); remove them"),
    ('\n[[runtimes]]\nname = "app-runtime"\npython_implementation = "cpython@3.11.13"\nrequirements = []\n',
     "runtime 'app-runtime': starts with reserved prefix 'app' (venvstacks refuses it too); rename it"),
    ('\n[[runtimes]]\nname = "pypy"\npython_implementation = "pypy@3.10.16"\nrequirements = []\n',
     "runtime 'pypy': python_implementation 'pypy@3.10.16': PyPy runtimes are not supported (rules_venvstacks builds "
     "python-build-standalone CPython only); use a 'cpython@3.Y.Z' runtime"),
    ('\n[[runtimes]]\nname = "x86"\npython_implementation = "cpython@3.11.13-32"\nrequirements = []\n',
     "runtime 'x86': python_implementation 'cpython@3.11.13-32' is not a 64-bit CPython 'cpython@3.Y.Z' (e.g. "
     "'cpython@3.11.13'); fix it"),
    ('\n[[runtimes]]\nname = "bare"\nrequirements = []\n',
     "runtime 'bare': key 'python_implementation' is missing (venvstacks requires it); add e.g. 'cpython@3.11.13'"),
    ('\n[[runtimes]]\nname = "on"\npython_implementation = "cpython@3.11.13"\nrequirements = []\nruntime = "cpython"\n',
     "runtime 'on': unknown key 'runtime' for runtime layers (venvstacks refuses it too); remove it"),
]  # fmt: skip


@pytest.mark.parametrize("case", range(len(REFUSED_LAYERS)))
def test_refused_layer_graph(tmp_path, case):
    added, message = REFUSED_LAYERS[case]
    ws = project(tmp_path, RUNTIME + added)
    assert refused(ws).startswith("venvstacks.toml: " + message.format(ws=ws))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("[[runtimes]\n", "is not a valid TOML file"),
        ('[project]\nname = "x"\n', "venvstacks.toml: it defines no layers"),
    ],
)
def test_refused_files(tmp_path, spec, message):
    ws = project(tmp_path, spec, files=())
    assert message in refused(ws)


# (what the spec adds to RUNTIME + APP, the warning without the "venvstacks.toml: " prefix)
WARNED = [
    ('index_overrides = { pytorch-cpu = "pytorch-cu128" }', f"application 'app': key 'index_overrides' is ignored: "
     f"it only accepts mismatched package_indexes, which {ISSUE_11[3:]}; remove it"),
    ("[tool.uv]\ncache-keys = []", "[tool.uv]: key 'cache-keys' is ignored: venvstacks replaces it too; remove it"),
    ("[tool.uv]\nno-build = true", "[tool.uv]: key 'no-build' is ignored: rules_venvstacks installs wheels only, as "
     "venvstacks does; remove it"),
    ('[tool.uv]\nenvironments = ["sys_platform == \'linux\'"]', "[tool.uv]: key 'environments' is ignored: each layer "
     "is resolved for each of its platforms; remove it"),
    ("[tool.uv]\nnative-tls = true", "[tool.uv]: key 'native-tls' is ignored: it does not change what is locked; "
     "remove it"),
    ('[metadata]\nowner = "me"', "top-level key 'metadata': ignored (venvstacks ignores it too); remove it"),
]  # fmt: skip


@pytest.mark.parametrize(("added", "warning"), WARNED, ids=[w.split(":")[0] + ":" + a[:24] for a, w in WARNED])
def test_warned_key(tmp_path, added, warning):
    ws = project(tmp_path, RUNTIME + APP + added + "\n")
    assert run(ws).warnings == ["venvstacks.toml: " + warning]
    assert (ws / "stacks/BUILD.bazel").is_file()


def test_default_index_drops_index_settings_with_a_warning(tmp_path):
    ws = project(
        tmp_path, RUNTIME + APP + 'priority_indexes = ["mirror"]\n[tool.uv]\nindex-url = "https://x.invalid"\n'
    )
    assert run(ws, default_index=True).warnings == [
        f"venvstacks.toml: application 'app': key 'priority_indexes' (indexes to try first) {ISSUE_11}: dropped "
        "(--default-index), the layers lock against the default index",
        f"venvstacks.toml: [tool.uv]: key 'index-url' (package index configuration) {ISSUE_11}: dropped "
        "(--default-index), the layers lock against the default index",
    ]


def test_uv_config_file(tmp_path):
    """venvstacks.uv.toml is read as [tool.uv] is; with [tool.uv] in the spec, venvstacks ignores it (so do we)."""
    ws = project(tmp_path, RUNTIME + APP)
    (ws / "venvstacks.uv.toml").write_text('exclude-newer = "2025-01-01T00:00:00Z"\n[[index]]\nname = "x"\nurl = "y"\n')
    assert refused(ws) == (
        f"venvstacks.toml: venvstacks.uv.toml: key 'index' (package index configuration) {ISSUE_11}; {INDEX_FIX} "
        "(nothing was written)"
    )
    run(ws, default_index=True)
    assert '    exclude_newer = "2025-01-01T00:00:00Z",' in target(ws, "lock")
    (ws / "venvstacks.toml").write_text(RUNTIME + APP + "[tool.uv]\n")
    assert run(ws).warnings == [
        "venvstacks.toml: venvstacks.uv.toml: ignored, as venvstacks ignores it when the spec has [tool.uv]; delete it"
    ]
    assert "exclude_newer" not in target(ws, "lock")


def test_disabled_layers(tmp_path):
    """`platforms = []` is written as it is; a layer over a disabled layer is disabled too (as venvstacks does,
    where the rules would refuse it) with a warning; the lock leaves disabled layers out."""
    spec = RUNTIME + FRAMEWORK.replace("requirements = []", "requirements = []\nplatforms = []")
    ws = project(
        tmp_path, spec + APP.replace('runtime = "cpython"', 'frameworks = ["fw"]') + APP.replace('"app"', '"b"', 1)
    )
    outcome = run(ws)
    assert "    platforms = []," in target(ws, "fw")
    assert "    platforms = []," in target(ws, "app")
    assert outcome.warnings == [
        "venvstacks.toml: application 'app': written with platforms = [] (disabled), as venvstacks disables it: it "
        "sits on disabled framework 'fw'"
    ]
    assert '    layers = [":b"],' in target(ws, "lock")


def test_layers_over_disjoint_platforms_are_disabled(tmp_path):
    spec = RUNTIME + FRAMEWORK.replace("requirements = []", 'requirements = []\nplatforms = ["win_amd64"]')
    spec += FRAMEWORK.replace('"fw"', '"fw2"').replace(
        "requirements = []", 'requirements = []\nplatforms = ["linux_x86_64"]'
    )
    ws = project(tmp_path, spec + APP.replace('runtime = "cpython"', 'frameworks = ["fw", "fw2"]'))
    assert run(ws).warnings == [
        "venvstacks.toml: application 'app': written with platforms = [] (disabled), as venvstacks disables it: its "
        "lower layers share no platform"
    ]
    assert '    layers = [\n        ":fw",\n        ":fw2",\n    ],' in target(ws, "lock")


def test_inherited_platforms_are_not_written(tmp_path):
    ws = project(
        tmp_path, RUNTIME.replace("requirements = []", 'requirements = []\nplatforms = ["linux_x86_64"]') + APP
    )
    run(ws)
    assert "platforms" not in target(ws, "app")


def test_all_layers_disabled_means_no_lock(tmp_path):
    ws = project(tmp_path, RUNTIME + "platforms = []\n" + APP)
    outcome = run(ws)
    assert "stack_lock" not in block(ws)
    assert not (ws / "MODULE.bazel").exists()
    assert outcome.changes == ["wrote stacks/BUILD.bazel", "wrote stacks/app.py"]


def test_package_launch_module_and_copies(tmp_path):
    """A package directory becomes a filegroup; its files are copied without __pycache__, .pyc and .git* entries,
    and files the source no longer has leave the copy. A module outside the spec's directory goes to the package's
    top directory."""
    spec = APP.replace('"app.py"', '"modules/tool"') + 'support_modules = ["../shared/common.py"]\n'
    files = ("modules/tool/__init__.py", "modules/tool/__main__.py", "modules/tool/data/table.json",
             "modules/tool/__pycache__/x.cpython-311.pyc", "modules/tool/.gitignore",
             "modules/tool/old.pyc")  # fmt: skip
    ws = project(tmp_path, RUNTIME + spec, files=files)
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared/common.py").write_text("VALUE = 1\n")
    run(ws)
    app = target(ws, "app")
    assert '    launch_module = ":modules_tool",' in app
    assert '    support_modules = ["common.py"],' in app
    assert target(ws, "modules_tool") == textwrap.dedent("""\
        filegroup(
            name = "modules_tool",
            srcs = glob(
                ["modules/tool/**"],
                exclude = [
                    "**/__pycache__/**",
                    "**/*.pyc",
                ],
            ),
        )""")
    copied = sorted(p.relative_to(ws / "stacks").as_posix() for p in (ws / "stacks").rglob("*") if p.is_file())
    assert copied == ["BUILD.bazel", "common.py", "modules/tool/__init__.py", "modules/tool/__main__.py",
                      "modules/tool/data/table.json"]  # fmt: skip
    (ws / "modules/tool/data/table.json").unlink()
    (ws / "modules/tool/__main__.py").write_text("print('changed')\n")
    assert run(ws).changes == ["wrote stacks/modules/tool/__main__.py", "removed stacks/modules/tool/data/table.json"]
    assert (ws / "stacks/modules/tool/__main__.py").read_text() == "print('changed')\n"


def test_modules_in_the_package_are_not_copied(tmp_path):
    """Without --package the spec's directory is the package: its modules are used where they are."""
    ws = project(tmp_path, RUNTIME + APP)
    outcome = run(ws, package=None)
    assert outcome.package == ""
    assert outcome.changes == ["wrote BUILD.bazel", "wrote MODULE.bazel"]
    assert '    launch_module = "app.py",' in (ws / "BUILD.bazel").read_text()
    assert 'venvstacks.lock_file(path = "//:venvstacks_lock.json")' in (ws / "MODULE.bazel").read_text()
    assert "-- venvstacks.toml --package //\n" in (ws / "BUILD.bazel").read_text()


@pytest.mark.parametrize(
    ("files", "module", "message"),
    [
        (("tool/__main__.py",), "tool", "key 'launch_module': 'tool' is a directory without __init__.py; add "
         "one (package directories need it here)"),
        (("my-app.py",), "my-app.py", "key 'launch_module': 'my-app.py' cannot be imported: 'my-app' is not a Python "
         "module name; rename it"),
        (("app.txt",), "app.txt", "key 'launch_module': 'app.txt' is not a .py file or a package directory; point it "
         "at the module's .py file"),
        (("__init__.py",), ".", "key 'launch_module': '.' is the spec's own directory (or holds it); point it at the "
         "module itself"),
    ],
)  # fmt: skip
def test_refused_modules(tmp_path, files, module, message):
    ws = project(tmp_path, RUNTIME + APP.replace('"app.py"', f'"{module}"'), files=files)
    assert refused(ws) == f"venvstacks.toml: application 'app': {message} (nothing was written)"


def test_two_modules_copied_to_one_place_are_refused(tmp_path):
    spec = APP.replace('"app.py"', '"../a/util.py"') + APP.replace('"app"', '"b"', 1).replace(
        '"app.py"', '"../b/util.py"'
    )
    ws = project(tmp_path, RUNTIME + spec, files=("../a/util.py", "../b/util.py"))
    assert refused(ws) == (
        "venvstacks.toml: module '../b/util.py': goes to util.py in the package, as '../a/util.py' does; rename one "
        "of them (nothing was written)"
    )


def test_reimport_of_an_unchanged_spec_writes_nothing(tmp_path):
    ws = project(tmp_path, RUNTIME + APP)
    run(ws)
    stamps = {p: p.stat().st_mtime_ns for p in ws.rglob("*") if p.is_file()}
    before = files_of(ws)
    outcome = run(ws)
    assert outcome.changes == []
    assert report(outcome)[0] == "nothing changed: //stacks is up to date with the spec"
    assert files_of(ws) == before
    assert {p: p.stat().st_mtime_ns for p in ws.rglob("*") if p.is_file()} == stamps


def test_reimport_keeps_hand_written_targets(tmp_path):
    ws = project(tmp_path, RUNTIME + APP)
    build = ws / "stacks/BUILD.bazel"
    build.parent.mkdir()
    mine_before = 'load("@rules_venvstacks//rules:defs.bzl", "stack_bundle")\n\n# My notes.\n'
    build.write_text(mine_before)
    run(ws)
    assert build.read_text().startswith(mine_before + "\n" + BEGIN)
    mine_after = '\nstack_bundle(\n    name = "bundle",\n    layers = [":app"],\n)\n'
    build.write_text(build.read_text() + mine_after)
    (ws / "venvstacks.toml").write_text(RUNTIME + APP.replace("requirements = []", 'requirements = ["six"]'))
    assert run(ws).changes == ["wrote stacks/BUILD.bazel"]
    text = build.read_text()
    assert text.startswith(mine_before + "\n" + BEGIN)
    assert text.endswith(END + "\n" + mine_after)
    assert '    requirements = ["six"],' in target(ws, "app")


def test_a_target_moved_out_of_the_block_is_left_to_the_user(tmp_path):
    ws = project(tmp_path, RUNTIME + APP)
    run(ws)
    build = ws / "stacks/BUILD.bazel"
    mine = '\napplication_layer(\n    name = "app",\n    check_args = ["--help"],\n    launch_module = "app.py",\n' \
        '    requirements = [],\n    runtime = ":cpython",\n)\n'  # fmt: skip
    build.write_text(build.read_text() + mine)
    outcome = run(ws)
    assert 'name = "app"' not in block(ws)
    assert build.read_text().endswith(END + "\n" + mine)
    assert outcome.notes == ["//stacks:app is defined outside the generated block: kept as written"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"{BEGIN}\n", f"stacks/BUILD.bazel: the generated block's markers are damaged (1 '{BEGIN}' and 0 '{END}' "
         "lines); restore them (one of each, BEGIN first) or delete the block, then import again"),
        ('stack_lock(\n    name = "mine",\n    layers = [],\n)\n', "stacks/BUILD.bazel has a stack_lock outside the "
         "generated block (one per package): name it 'lock' to keep it, or import into another --package"),
        ('filegroup(\n    name = "app_test",\n)\n', "application_layer 'app' would make target :app_test, as a target "
         "outside the generated block does; rename the layer"),
    ],
)  # fmt: skip
def test_build_files_that_cannot_take_the_block(tmp_path, text, message):
    ws = project(tmp_path, RUNTIME + APP)
    (ws / "stacks").mkdir()
    (ws / "stacks/BUILD.bazel").write_text(text)
    assert message in refused(ws)


def test_module_bazel_gets_only_the_missing_lines(tmp_path):
    ws = project(tmp_path, RUNTIME + APP)
    module = 'module(name = "mine")\n\nbazel_dep(name = "rules_venvstacks", version = "0.1.0")\n\n' \
        'vs = use_extension(\n    "@rules_venvstacks//rules:extensions.bzl",\n    "venvstacks",\n)\n' \
        'vs.lock_file(path = "//other:venvstacks_lock.json")\n'  # fmt: skip
    (ws / "MODULE.bazel").write_text(module)
    outcome = run(ws)
    assert (ws / "MODULE.bazel").read_text() == module + '\nvs.lock_file(path = "//stacks:venvstacks_lock.json")\n'
    assert outcome.notes == ['MODULE.bazel: added vs.lock_file(path = "//stacks:venvstacks_lock.json")']
    assert run(ws).notes == []


def test_module_bazel_of_rules_venvstacks_itself(tmp_path):
    ws = project(tmp_path, RUNTIME + APP)
    (ws / "MODULE.bazel").write_text('module(name = "rules_venvstacks")\n')
    run(ws)
    assert (ws / "MODULE.bazel").read_text() == (
        'module(name = "rules_venvstacks")\n\nvenvstacks = use_extension("//rules:extensions.bzl", "venvstacks")\n'
        'venvstacks.lock_file(path = "//stacks:venvstacks_lock.json")\n'
    )


@pytest.mark.parametrize(("given", "package"), [("//tools/stacks/", "tools/stacks"), (".", ""), ("//", "")])
def test_package_names(tmp_path, given, package):
    ws = project(tmp_path, RUNTIME + APP)
    assert run(ws, package=given).package == package


@pytest.mark.parametrize("given", ["../up", "a//b", "a:b", "a/./b"])
def test_bad_package_names(tmp_path, given):
    ws = project(tmp_path, RUNTIME + APP)
    assert refused(ws, package=given) == (
        f"--package {given!r} is not a Bazel package path (e.g. 'stacks' or 'python/stacks')"
    )


def test_spec_outside_the_workspace_needs_a_package(tmp_path):
    ws = project(tmp_path, RUNTIME + APP)
    with pytest.raises(UserError, match=r"is outside the workspace .*; give --package"):
        import_venvstacks(Request(ws / "venvstacks.toml", tmp_path / "elsewhere", None))


def test_runtime_release_the_table_does_not_have(tmp_path, monkeypatch):
    ws = project(tmp_path, RUNTIME.replace("3.11.13", "3.11.7"), files=())
    warning = (
        "venvstacks.toml: runtime 'cpython': CPython 3.11.7 is not in the runtime table (rules/private/"
        "pbs_runtimes.json has 3.11.13 for 3.11): building it needs a local archive (VENVSTACKS_LOCAL_RUNTIMES) or a "
        "runtime_archive; or use 'cpython@3.11.13' in the spec"
    )
    assert run(ws).warnings == [warning]
    local = tmp_path / "runtimes"
    local.mkdir()
    (local / "cpython-3.11.7+local-x86_64-unknown-linux-gnu-install_only.tar.gz").touch()
    monkeypatch.setenv("VENVSTACKS_LOCAL_RUNTIMES", str(local))
    assert run(ws).warnings == []


def test_cli_verb(tmp_path, capsys, monkeypatch):
    ws = project(tmp_path, RUNTIME + APP + "build_requirements = []\n")
    monkeypatch.setenv("BUILD_WORKSPACE_DIRECTORY", str(ws))
    monkeypatch.chdir(ws)
    assert main(["import-venvstacks", "venvstacks.toml", "--package", "stacks"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[:2] == ["wrote MODULE.bazel", "wrote stacks/BUILD.bazel"]
    assert err.startswith("warning: venvstacks.toml: application 'app': legacy key 'build_requirements' dropped")
    (ws / "venvstacks.toml").write_text(RUNTIME + APP + "priority_indexes = ['x']\n")
    assert main(["import-venvstacks", "venvstacks.toml"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: venvstacks.toml: application 'app': key 'priority_indexes'")
    assert "Traceback" not in err
    monkeypatch.delenv("BUILD_WORKSPACE_DIRECTORY")
    assert main(["import-venvstacks", "venvstacks.toml"]) == 1
    assert capsys.readouterr().err.startswith(
        "error: run it with `bazel run @rules_venvstacks//tools:import_venvstacks"
    )


def test_generated_build_file_is_buildifier_clean(tmp_path):
    buildifier = Path.home() / ".cache/rules_venvstacks/buildifier-8.2.1-linux_amd64"
    if not os.access(buildifier, os.X_OK):
        pytest.skip("no buildifier (tools/test lint fetches it)")
    import subprocess

    ws = project(
        tmp_path,
        RUNTIME + APP.replace('"app.py"', '"tool"') + 'dynlib_exclude = ["a.so"]\n',
        files=("tool/__init__.py",),
    )
    run(ws)
    result = subprocess.run(
        [buildifier, "--mode=check", "--lint=warn", ws / "stacks/BUILD.bazel"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
