"""stack_pytest: pytest on an application's code against its deployed stack, reported to Bazel as JUnit XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
from harness import WORKSPACES, Workspace, copy_workspace

TESTS = """\
import hello_support


def test_greeting_comes_from_the_deployed_app() -> None:
    assert hello_support.greeting() == "hello"
    assert "app-hello" in hello_support.__file__
"""

BUILD = """
stack_pytest(
    name = "hello_pytest",
    app = ":hello",
    srcs = ["test_hello.py"],
    requirements = ["pytest==8.4.1"],
)
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    """The small stack with a support module, a pytest of it and the test layer locked."""
    base = tmp_path_factory.mktemp("stack_pytest")
    ws = copy_workspace(WORKSPACES / "small_stack", base / "ws", base / "output_base")
    stacks = ws.path / "stacks"
    (stacks / "hello_support.py").write_text('def greeting() -> str:\n    return "hello"\n')
    (stacks / "test_hello.py").write_text(TESTS)
    build = (stacks / "BUILD.bazel").read_text()
    build = build.replace('"stack_lock")', '"stack_lock", "stack_pytest")')
    build = build.replace(
        'launch_module = "hello.py",', 'launch_module = "hello.py",\n    support_modules = ["hello_support.py"],'
    )
    build = build.replace(
        'layers = [":hello"],', 'layers = [\n        ":hello",\n        ":hello_pytest_layer",\n    ],'
    )
    (stacks / "BUILD.bazel").write_text(build + BUILD)
    ws.bazel("run", "//stacks:lock")
    yield ws
    ws.discard()


def junit(ws: Workspace) -> ET.Element:
    return ET.parse(ws.path / "bazel-testlogs" / "stacks" / "hello_pytest" / "test.xml").getroot()


def test_passing_tests_pass_and_report_junit(stack: Workspace) -> None:
    result = stack.bazel("test", "//stacks:hello_pytest")
    assert "//stacks:hello_pytest" in result.stdout and "PASSED" in result.stdout
    cases = list(junit(stack).iter("testcase"))
    assert [c.get("name") for c in cases] == ["test_greeting_comes_from_the_deployed_app"]
    index = (stack.path / "stacks" / "venvstacks_lock.json").read_text()
    assert '"install_target": "test-hello_pytest_layer"' in index  # locked like any layer
    assert not (stack.path / "bazel-bin" / "stacks" / "hello.layer" / "test-hello_pytest_layer").exists()


def test_a_failing_test_fails_the_bazel_test(stack: Workspace) -> None:
    tests = stack.path / "stacks" / "test_hello.py"
    original = tests.read_text()
    tests.write_text(original.replace('== "hello"', '== "goodbye"'))
    try:
        result = stack.bazel("test", "//stacks:hello_pytest", check=False)
    finally:
        tests.write_text(original)
    assert result.returncode == 3, result.stderr[-3000:]  # Bazel: build fine, tests failed
    assert "FAILED" in result.stdout
    failures = [c for c in junit(stack).iter("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failures] == ["test_greeting_comes_from_the_deployed_app"]
    assert "goodbye" in failures[0].find("failure").get("message", "")  # type: ignore[union-attr]
