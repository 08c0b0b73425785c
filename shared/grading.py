"""Graded exercises: one pytest suite grades the reference and a learner's file alike.

How it fits together (CS336-style adapter, minitorch-style markers):

- `monthN_x/tasks.py` lists the month's tasks: id (= pytest marker, e.g. `m1_t2`),
  title, points, the names a learner implements, and a hint.
- `monthN_x/graded.py` is a thin adapter exporting those names from the reference code.
- `monthN_x/exercise_stub.py` exports the same names, each raising
  `NotImplementedError("Task N.M ...")`; `python -m shared.exercises start monthN` copies it.
  Its classes subclass the reference class and override only the methods graded.py's
  GRADED_METHODS lists, so their constructors cannot drift; a graded test of a learner's
  class that does not define one of those methods fails instead of grading the reference's.
- Graded tests take the `impl` fixture and call `impl.softmax(...)` etc. Each carries
  exactly one task marker. Without `--impl` they run against `graded.py`; with
  `--impl my_work/month1_transformer.py` against the learner's file (and only the
  graded tests of that month are selected).
- A test that hits NotImplementedError is reported as skipped, "not attempted"; at the
  end a score table (task, points, status) is printed, and written as JSON with
  `--score-json PATH`.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import types
from dataclasses import dataclass, field
from pathlib import Path

import pytest

MONTHS = (
    "month1_transformer",
    "month2_llm_core",
    "month3_mamba",
    "month4_moe",
    "month5_rag",
    "month6_system",
)


@dataclass(frozen=True)
class Task:
    id: str  # the pytest marker, e.g. "m1_t2"
    title: str
    points: int
    names: tuple[str, ...]  # what the learner implements (functions / classes)
    hint: str = ""

    @property
    def label(self) -> str:  # "Task 1.2"
        month, task = self.id[1:].split("_t")
        return f"Task {month}.{task}"


def month_tasks(month: str) -> list[Task]:
    """The month's task table, or [] when it has none yet."""
    if importlib.util.find_spec(f"{month}.tasks") is None:
        return []
    return list(importlib.import_module(f"{month}.tasks").TASKS)


def all_tasks() -> dict[str, Task]:
    return {t.id: t for month in MONTHS for t in month_tasks(month)}


def resolve_month(name: str) -> str:
    """'month3', '3', 'month3_mamba' -> 'month3_mamba'."""
    key = name.strip().lower().removeprefix("month")
    for month in MONTHS:
        if month == name or month.removeprefix("month").split("_")[0] == key.split("_")[0]:
            return month
    raise ValueError(f"unknown month {name!r}; choose one of {', '.join(MONTHS)}")


def load_impl_file(path: str | Path) -> types.ModuleType:
    path = Path(path).resolve()
    spec = importlib.util.spec_from_file_location(f"learner_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise pytest.UsageError(f"--impl {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def graded_methods(month: str) -> dict[str, tuple[str, ...]]:
    """Class name -> the methods a learner writes in it (GRADED_METHODS in the month's graded.py)."""
    return getattr(importlib.import_module(f"{month}.graded"), "GRADED_METHODS", {})


def inherited_graded_methods(module: types.ModuleType, month: str) -> list[str]:
    """'Class.method' for each graded method that a class defined in the learner's file does not
    define itself. Stub classes subclass the reference, so a deleted method would quietly grade
    the reference's. (A class imported as is, e.g. from graded.py, is the learner's choice.)"""
    inherited = []
    for name, methods in graded_methods(month).items():
        cls = getattr(module, name, None)
        if not isinstance(cls, type) or cls.__module__ != module.__name__:
            continue
        for method in methods:
            owner = next((c for c in cls.__mro__ if method in vars(c)), None)
            if owner is None or owner.__module__ != module.__name__:
                inherited.append(f"{name}.{method}")
    return inherited


def impl_month(module: types.ModuleType, path: Path) -> str:
    """A stub declares MONTH = '...'; otherwise the file name says it."""
    return resolve_month(getattr(module, "MONTH", path.stem))


def _test_month(item_path: Path) -> str | None:
    for part in item_path.parts:
        if part in MONTHS:
            return part
    return None


@dataclass
class _Score:
    passed: int = 0
    failed: int = 0
    not_attempted: int = 0
    messages: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.failed:
            return "fail"
        if self.not_attempted:
            return "not attempted"
        return "pass"


class GradingPlugin:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.tasks = all_tasks()
        self.impl_path: Path | None = None
        self.impl_module: types.ModuleType | None = None
        self.impl_error: BaseException | None = None
        self.impl_month: str | None = None
        self.impl_inherited: list[str] = []
        option = config.getoption("impl")
        if option:
            self.impl_path = Path(option).resolve()
            if not self.impl_path.is_file():
                raise pytest.UsageError(f"--impl {option}: no such file")
            try:
                self.impl_module = load_impl_file(self.impl_path)
            except Exception as err:  # a syntax error etc. fails every graded test, clearly
                self.impl_error = err
            self.impl_month = (
                impl_month(self.impl_module, self.impl_path)
                if self.impl_module
                else resolve_month(self.impl_path.stem)
            )
            if self.impl_module:
                self.impl_inherited = inherited_graded_methods(self.impl_module, self.impl_month)
        self.scores: dict[str, _Score] = {}

    # -- which tests are graded, and for which task --------------------------------
    def task_of(self, item: pytest.Item) -> Task | None:
        marks = [m.name for m in item.iter_markers() if m.name in self.tasks]
        if len(marks) > 1:
            raise pytest.UsageError(f"{item.nodeid} carries several task markers: {marks}")
        return self.tasks[marks[0]] if marks else None

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        for item in items:
            uses_impl = "impl" in getattr(item, "fixturenames", ())
            if uses_impl and self.task_of(item) is None:
                raise pytest.UsageError(f"{item.nodeid} uses the impl fixture but has no task marker")
        if self.impl_month is None:
            return
        keep, drop = [], []
        for item in items:
            task = self.task_of(item)
            graded_here = task is not None and _test_month(item.path) == self.impl_month
            (keep if graded_here else drop).append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep

    # -- the impl fixture ---------------------------------------------------------
    @pytest.fixture
    def impl(self, request: pytest.FixtureRequest) -> types.ModuleType:
        """The implementation under test: the learner's file (--impl) or the reference."""
        month = _test_month(request.node.path)
        if month is None:
            raise pytest.UsageError(f"{request.node.nodeid}: impl is only for tests inside a month folder")
        if self.impl_month == month:
            if self.impl_error is not None:
                raise RuntimeError(f"could not import {self.impl_path}: {self.impl_error!r}")
            names = self.task_of(request.node).names
            inherited = [m for m in self.impl_inherited if m.split(".")[0] in names]
            if inherited:
                raise RuntimeError(f"{self.impl_path} does not define {', '.join(inherited)}; "
                                   "the reference's would be graded instead")
            return self.impl_module
        return importlib.import_module(f"{month}.graded")

    # -- outcomes -----------------------------------------------------------------
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        outcome = yield
        report = outcome.get_result()
        task = self.task_of(item)
        if task is None:
            return
        score = self.scores.setdefault(task.id, _Score())
        if call.excinfo is not None and call.excinfo.errisinstance(NotImplementedError):
            report.outcome = "skipped"
            report.longrepr = (str(item.path), item.location[1] or 0, f"not attempted: {call.excinfo.value}")
            score.not_attempted += 1
        elif report.failed:
            score.failed += 1
        elif report.when == "call" and report.passed:
            score.passed += 1

    # -- the score table ----------------------------------------------------------
    def score_rows(self) -> list[dict]:
        rows = []
        for task_id, score in self.scores.items():
            task = self.tasks[task_id]
            rows.append(
                {
                    "task": task.id,
                    "label": task.label,
                    "title": task.title,
                    "points": task.points,
                    "earned": task.points if score.status == "pass" else 0,
                    "status": score.status,
                    "passed": score.passed,
                    "tests": score.passed + score.failed + score.not_attempted,
                }
            )
        return sorted(rows, key=lambda r: tuple(int(x) for x in r["task"][1:].split("_t")))

    def pytest_terminal_summary(self, terminalreporter) -> None:
        rows = self.score_rows()
        if not rows:
            return
        who = str(self.impl_path) if self.impl_path else "the reference implementation"
        tr = terminalreporter
        tr.section(f"graded exercises: {who}")
        tr.write_line(f"{'task':<8} {'title':<40} {'tests':>7} {'points':>7}  status")
        for r in rows:
            tests = f"{r['passed']}/{r['tests']}"
            points = f"{r['earned']}/{r['points']}"
            tr.write_line(f"{r['label']:<8} {r['title'][:40]:<40} {tests:>7} {points:>7}  {r['status']}")
        earned, total = sum(r["earned"] for r in rows), sum(r["points"] for r in rows)
        tr.write_line(f"score: {earned}/{total} points")
        target = self.config.getoption("score_json")
        if target:
            Path(target).write_text(json.dumps({"impl": who, "rows": rows, "earned": earned, "total": total}))


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("graded exercises")
    group.addoption("--impl", default=None, help="grade this learner file (e.g. my_work/month1_transformer.py)")
    group.addoption("--score-json", default=None, help="also write the score table as JSON here")


def pytest_configure(config: pytest.Config) -> None:
    for task in all_tasks().values():
        config.addinivalue_line("markers", f"{task.id}: {task.label} {task.title} ({task.points} points)")
    config.pluginmanager.register(GradingPlugin(config), "hybrid-grading")
