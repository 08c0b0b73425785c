"""The graded-exercise harness itself: pass / fail / not attempted, task selection, bad files."""

import textwrap

from shared.exercises import start
from shared.grading import Task, resolve_month
from shared.testing import run_graded

MIXED = """
MONTH = "month1_transformer"
from month1_transformer.exercise_stub import *  # everything "not attempted" ...
from month1_transformer.graded import softmax  # ... except a correct Task 1.1 ...
import torch

def causal_mask(t_q, t_k, device=None):  # ... and a wrong Task 1.2 (upper triangle)
    return torch.ones(t_q, t_k, dtype=torch.bool).triu()
"""


def _statuses(score):
    return {row["task"]: row["status"] for row in score["rows"]}


def test_pass_fail_and_not_attempted_are_told_apart(tmp_path):
    learner = tmp_path / "month1_transformer.py"
    learner.write_text(textwrap.dedent(MIXED))
    proc, score = run_graded("month1_transformer", learner, tmp_path, "-m", "m1_t1 or m1_t2 or m1_t3")
    assert proc.returncode == 1, proc.stdout[-2000:]  # a failing task fails the run
    assert _statuses(score) == {"m1_t1": "pass", "m1_t2": "fail", "m1_t3": "not attempted"}
    assert score["earned"] == 5 and score["total"] == 30
    assert "graded exercises:" in proc.stdout and "score: 5/30 points" in proc.stdout
    assert "not attempted: Task 1.3" in proc.stdout


def test_one_marker_grades_one_task_and_ungraded_tests_are_left_out(tmp_path):
    learner = tmp_path / "month1_transformer.py"
    learner.write_text("from month1_transformer.graded import *\n")  # month from the file name
    proc, score = run_graded("month1_transformer", learner, tmp_path, "-m", "m1_t5")
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert _statuses(score) == {"m1_t5": "pass"}
    assert "deselected" in proc.stdout


def test_a_file_that_does_not_import_fails_cleanly(tmp_path):
    learner = tmp_path / "month1_transformer.py"
    learner.write_text("def softmax(x:\n")
    proc, score = run_graded("month1_transformer", learner, tmp_path, "-m", "m1_t1")
    assert proc.returncode == 1
    assert _statuses(score) == {"m1_t1": "fail"}
    assert "SyntaxError" in proc.stdout


def test_start_copies_the_stub_and_keeps_existing_work(tmp_path):
    target = start("month1", tmp_path, force=False)
    assert target.name == "month1_transformer.py"
    assert 'raise NotImplementedError("Task 1.1' in target.read_text()
    target.write_text("# my work")
    try:
        start("month1", tmp_path, force=False)
    except SystemExit as err:
        assert "exists" in str(err)
    else:
        raise AssertionError("start overwrote existing work")
    assert target.read_text() == "# my work"


def test_month_names_and_labels():
    assert resolve_month("month3") == resolve_month("3") == "month3_mamba"
    assert Task("m4_t12", "x", 1, ("f",)).label == "Task 4.12"
