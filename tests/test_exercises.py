"""Every month with graded exercises: its stub exposes what the tasks name, and the
graded suite run against the untouched stub reports every task as "not attempted"; a learner's
class that leaves a graded method to the reference fails instead of grading the reference."""

import importlib
import inspect

import pytest

from shared.exercises import stub_path
from shared.grading import MONTHS, inherited_graded_methods, load_impl_file, month_tasks
from shared.testing import run_graded

GRADED_MONTHS = [m for m in MONTHS if month_tasks(m)]


def test_some_month_is_graded():
    assert "month1_transformer" in GRADED_MONTHS


@pytest.mark.parametrize("month", GRADED_MONTHS)
def test_stub_and_reference_expose_every_task_name(month):
    stub = load_impl_file(stub_path(month))
    reference = importlib.import_module(f"{month}.graded")
    assert stub.MONTH == reference.MONTH == month
    for task in month_tasks(month):
        for name in task.names:
            ours, theirs = getattr(stub, name, None), getattr(reference, name, None)
            assert ours is not None, f"stub lacks {name} ({task.label})"
            assert theirs is not None, f"graded.py lacks {name} ({task.label})"
            if inspect.isfunction(theirs):
                ref_params = list(inspect.signature(theirs).parameters)
                assert list(inspect.signature(ours).parameters) == ref_params, f"{name}: signatures differ"


@pytest.mark.parametrize("month", GRADED_MONTHS)
def test_stub_defines_every_graded_method(month):
    assert inherited_graded_methods(load_impl_file(stub_path(month)), month) == []


# A learner's RMSNorm that lost its forward: it would inherit the reference's.
FORGETFUL = """from month1_transformer.norm import LayerNorm, RMSNorm as ReferenceRMSNorm


class RMSNorm(ReferenceRMSNorm):
    pass
"""


def test_a_graded_method_left_to_the_reference_is_caught(tmp_path):
    learner = tmp_path / "month1_transformer.py"
    learner.write_text(FORGETFUL)
    # LayerNorm, imported as is, is graded as the reference; RMSNorm is the learner's own class.
    assert inherited_graded_methods(load_impl_file(learner), "month1_transformer") == ["RMSNorm.forward"]


@pytest.mark.slow
def test_a_graded_method_left_to_the_reference_fails_its_task(tmp_path):
    learner = tmp_path / "month1_transformer.py"
    learner.write_text(FORGETFUL)
    proc, score = run_graded("month1_transformer", learner, tmp_path, "-m", "m1_t5")
    assert "does not define RMSNorm.forward" in proc.stdout
    assert [(row["task"], row["status"]) for row in score["rows"]] == [("m1_t5", "fail")]


@pytest.mark.slow
@pytest.mark.parametrize("month", GRADED_MONTHS)
def test_untouched_stub_is_all_not_attempted(month, tmp_path):
    proc, score = run_graded(month, stub_path(month), tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "error" not in proc.stdout.splitlines()[-1].lower()
    statuses = {row["task"]: row["status"] for row in score["rows"]}
    assert statuses == {t.id: "not attempted" for t in month_tasks(month)}
    assert score["earned"] == 0
