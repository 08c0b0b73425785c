# The graded-exercise harness (--impl, task markers, score table) for every month.
pytest_plugins = ["shared.grading"]
