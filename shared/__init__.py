"""The package every month builds on.

runtime (device, threads, seeds, quick mode), config (dataclass -> CLI), training (the
shared loop), checkpoint (atomic saves), plotting (PNG), corpora (offline text), models
(the offline model store), grading and exercises (graded exercises), doctor (install check).
Import the submodule you need: importing `shared` itself loads nothing heavy.
"""
