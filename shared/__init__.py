"""The package every month builds on: runtime set-up, configs, training loop,
checkpoints, plots, corpora, the offline model store and the graded-exercise harness."""

from shared.runtime import pick_device, quick_mode, seed_everything, set_threads

__all__ = ["pick_device", "quick_mode", "seed_everything", "set_threads"]
