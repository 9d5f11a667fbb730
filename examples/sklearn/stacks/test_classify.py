"""pytest on the classify app's code, run against its deployed stack (bazel test //stacks:classify_pytest)."""

import sys

import classify_iris
import pytest


def test_the_app_code_is_the_deployed_one() -> None:
    # The launch module comes from the app layer's site-packages, not from the source tree.
    assert "app-classify" in classify_iris.__file__
    assert sys.prefix.endswith("test-classify_pytest_layer")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classifier_is_accurate_on_held_out_data(seed: int) -> None:
    assert classify_iris.test_accuracy(seed) > 0.9


def test_main_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert classify_iris.main() == 0
    assert "test accuracy" in capsys.readouterr().out
