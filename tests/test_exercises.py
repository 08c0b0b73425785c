"""Every month with graded exercises: its stub exposes what the tasks name, and the
graded suite run against the untouched stub reports every task as "not attempted"."""

import importlib
import inspect

import pytest

from shared.exercises import stub_path
from shared.grading import MONTHS, load_impl_file, month_tasks
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


@pytest.mark.slow
@pytest.mark.parametrize("month", GRADED_MONTHS)
def test_untouched_stub_is_all_not_attempted(month, tmp_path):
    proc, score = run_graded(month, stub_path(month), tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "error" not in proc.stdout.splitlines()[-1].lower()
    statuses = {row["task"]: row["status"] for row in score["rows"]}
    assert statuses == {t.id: "not attempted" for t in month_tasks(month)}
    assert score["earned"] == 0
