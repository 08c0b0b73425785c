"""The exercise stubs cannot drift from the reference (issue #15).

Each stub class subclasses its reference class and overrides only the methods the month's
graded.py lists in GRADED_METHODS, with the reference's signatures. Built with the same
arguments and seed, a stub class and its reference have the same module tree, attributes,
parameters, buffers and initial values, so a constructor edited on either side fails here.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import types
from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

from month1_transformer.model import GPTConfig
from month3_mamba.model import MambaConfig
from shared.exercises import stub_path
from shared.grading import MONTHS, graded_methods, load_impl_file, month_tasks

GRADED_MONTHS = [m for m in MONTHS if month_tasks(m)]

# How to build each stub class whose constructor is the reference's: small sizes, and the
# options that change what the constructor builds.
BUILDS: dict[str, dict[str, list[Callable[[type], nn.Module]]]] = {
    "month1_transformer": {
        "MultiHeadAttention": [lambda c: c(16, 4), lambda c: c(16, 2, bias=False, dropout=0.1, fused=True)],
        "LayerNorm": [lambda c: c(8), lambda c: c(8, eps=1e-6, bias=False)],
        "RMSNorm": [lambda c: c(8), lambda c: c(8, eps=1e-5)],
        "Block": [
            lambda c: c(GPTConfig(n_embd=16, n_head=2)),
            lambda c: c(GPTConfig(n_embd=16, n_head=4, norm="rmsnorm", bias=False, dropout=0.1,
                                  fused_attention=False)),
        ],
    },
    "month3_mamba": {
        "MambaMixer": [
            lambda c: c(MambaConfig(d_model=16, d_state=4, dt_rank=3)),
            lambda c: c(MambaConfig(d_model=8, d_state=2, expand=3, bias=True, conv_bias=False, scan="chunked")),
        ],
    },
}


@functools.cache
def stub(month: str) -> types.ModuleType:
    return load_impl_file(stub_path(month))


def stub_classes(month: str) -> dict[str, type]:
    module = stub(month)
    return {n: v for n, v in vars(module).items() if isinstance(v, type) and v.__module__ == module.__name__}


def reference_class(month: str, name: str) -> type:
    return getattr(importlib.import_module(f"{month}.graded"), name)


def own_attributes(cls: type) -> set[str]:
    """What a class body defines: its methods and attributes, not the bookkeeping every class
    body gets (__module__, __doc__, and __firstlineno__ from Python 3.13 on)."""
    return {n for n, v in vars(cls).items() if not (n.startswith("__") and n.endswith("__")) or callable(v)}


def parameters(function: Callable) -> list[tuple]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


def reference_type(cls: type, stub_module: str) -> type:
    """The first class in cls's MRO that the stub did not define."""
    return next(c for c in cls.__mro__ if c.__module__ != stub_module)


def structure(module: nn.Module, stub_module: str) -> dict:
    return {
        "modules": [(n, reference_type(type(m), stub_module)) for n, m in module.named_modules()],
        # Plain attributes say what the constructor chose (fused, eps, n_head, cfg ...).
        "attributes": {
            n: {k: v for k, v in vars(m).items() if not k.startswith("_") and not isinstance(v, Tensor)}
            for n, m in module.named_modules()
        },
        "parameters": [(n, p.shape, p.dtype, p.requires_grad) for n, p in module.named_parameters()],
        "buffers": [(n, b.shape, b.dtype) for n, b in module.named_buffers()],
        "state_dict": list(module.state_dict()),
    }


@pytest.mark.parametrize("month", GRADED_MONTHS)
def test_every_stub_class_is_graded_and_built_here(month):
    classes, graded = stub_classes(month), graded_methods(month)
    assert set(classes) == set(graded), "every stub class needs GRADED_METHODS in graded.py, and only those"
    built_by_reference = {n for n, methods in graded.items() if "__init__" not in methods}
    assert set(BUILDS.get(month, {})) == built_by_reference, "BUILDS must cover every reference-built stub class"


CLASSES = [(month, name) for month in GRADED_MONTHS for name in graded_methods(month)]


@pytest.mark.parametrize("month,name", CLASSES)
def test_stub_class_overrides_only_the_graded_methods(month, name):
    cls, ref, graded = stub_classes(month)[name], reference_class(month, name), graded_methods(month)[name]
    assert own_attributes(cls) == set(graded), f"{name} may define only {graded}; the rest is the reference's"
    if "__init__" in graded:
        # super().__init__() in the learner's constructor must reach nn.Module, not the reference.
        assert not issubclass(cls, ref), f"{name}'s constructor is graded: it must not subclass the reference"
    else:
        assert cls.__bases__ == (ref,), f"{name} must subclass the reference {ref.__module__}.{ref.__qualname__}"
    for method in graded:
        ours, theirs = parameters(getattr(cls, method)), parameters(getattr(ref, method))
        assert ours == theirs, f"{name}.{method}: signatures differ"


BUILD_CASES = [
    pytest.param(month, name, build, id=f"{name}-{i}")
    for month, classes in BUILDS.items()
    for name, builds in classes.items()
    for i, build in enumerate(builds)
]


@pytest.mark.parametrize("month,name,build", BUILD_CASES)
def test_stub_builds_what_the_reference_builds(month, name, build):
    torch.manual_seed(0)
    ours = build(stub_classes(month)[name])
    torch.manual_seed(0)
    ref = build(reference_class(month, name))
    stub_module = stub(month).__name__
    ours_structure, ref_structure = structure(ours, stub_module), structure(ref, stub_module)
    for part, expected in ref_structure.items():
        assert ours_structure[part] == expected, f"{name}: the {part} differ from the reference's"
    ours_state, ref_state = ours.state_dict(), ref.state_dict()
    for key, value in ref_state.items():
        assert torch.equal(ours_state[key], value), f"{name}: {key} starts with other values"
