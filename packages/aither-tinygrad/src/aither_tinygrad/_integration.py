"""The ``tinygrad`` entry point: which objects are tinygrad models, and wrapping them.

tinygrad models are plain Python classes (and often plain functions), so the class module says nothing. When
``tinygrad`` is already imported, :meth:`TinygradIntegration.claims` decides by duck typing, without calling
anything:

* an object whose class comes from tinygrad (``tinygrad.nn.Linear``...) and is callable;
* a callable object holding tinygrad Tensors in its attributes (its parameters, found by a bounded walk of
  ``vars()``, lists, tuples and dicts, as ``tinygrad.nn.state.get_parameters`` would find them);
* a function (or bound method) whose code refers to a tinygrad global (``Tensor``, ``tinygrad``, ``nn``...)
  or closes over a tinygrad model or Tensor.

Anything else (a parameter-free model class, a function that only receives Tensors) is wrapped explicitly with
:func:`aither_tinygrad.wrap`; a function only known to be tinygrad at call time is not claimed.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Sequence

from aither.integrations import Integration, ModelLogger, TrackedModel, WrapOptions, register_sampler, require_framework

from ._sampling import capture_tensor, is_tensor
from ._tracked import TrackedTinygradModel

__all__ = ["TinygradIntegration", "integration", "wrap"]

_WALK_DEPTH = 4
_WALK_ITEMS = 2000


def _from_tinygrad(value: object) -> bool:
    if isinstance(value, types.ModuleType):
        return value.__name__.partition(".")[0] == "tinygrad"
    module = getattr(value, "__module__", None) if isinstance(value, (type, types.FunctionType)) else None
    if isinstance(module, str):
        return module.partition(".")[0] == "tinygrad"
    return type(value).__module__.partition(".")[0] == "tinygrad"


def _holds_tensors(root: object) -> bool:
    """Whether ``root`` holds a tinygrad Tensor within a few levels of attributes and containers."""
    budget = _WALK_ITEMS
    stack: list[tuple[object, int]] = [(root, 0)]
    seen: set[int] = set()
    while stack and budget > 0:
        value, depth = stack.pop()
        budget -= 1
        if id(value) in seen:
            continue
        seen.add(id(value))
        if is_tensor(value):
            return True
        if depth >= _WALK_DEPTH:
            continue
        if isinstance(value, (list, tuple)):
            children: Sequence[object] = value[:_WALK_ITEMS]
        elif isinstance(value, dict):
            children = list(value.values())[:_WALK_ITEMS]
        elif isinstance(value, (str, bytes, int, float, bool, type, types.ModuleType)) or value is None:
            continue
        else:
            try:
                children = list(vars(value).values())
            except TypeError:  # no __dict__
                continue
        stack.extend((child, depth + 1) for child in children)
    return False


def _refers_to_tinygrad(function: object) -> bool:
    """Whether a function's code names a tinygrad global or closes over tinygrad objects."""
    code = getattr(function, "__code__", None)
    if code is None:
        return False
    namespace = getattr(function, "__globals__", {})
    for name in code.co_names:
        if name in namespace and _from_tinygrad(namespace[name]):
            return True
    for cell in getattr(function, "__closure__", None) or ():
        try:
            content = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if _from_tinygrad(content) or _holds_tensors(content):
            return True
    return False


def is_tinygrad_model(model: object) -> bool:
    """The duck-typing rule of :meth:`TinygradIntegration.claims` (see the module docstring)."""
    if not callable(model) or is_tensor(model) or isinstance(model, TrackedModel):
        return False
    if isinstance(model, functools.partial):
        return is_tinygrad_model(model.func) or _holds_tensors(list(model.args) + list(model.keywords.values()))
    if isinstance(model, types.MethodType):
        return _refers_to_tinygrad(model.__func__) or _holds_tensors(model.__self__)
    if isinstance(model, types.FunctionType):
        return _refers_to_tinygrad(model)
    if isinstance(model, type):
        return False
    return any(k.__module__.partition(".")[0] == "tinygrad" for k in type(model).__mro__) or _holds_tensors(model)


def _require_tinygrad() -> None:
    """Import tinygrad (core warns once outside the tested ``>=0.10,<0.15``); register the Tensor sampler."""
    require_framework("tinygrad", plugin="aither-tinygrad")
    register_sampler("tinygrad", "Tensor", capture_tensor)


class TinygradIntegration(Integration):
    """Claims tinygrad models and functions by duck typing (tinygrad has no model base class)."""

    name = "tinygrad"
    modules = ("tinygrad",)

    def claims(self, model: object) -> bool:
        return is_tinygrad_model(model)

    def wrap(self, model: object, options: WrapOptions, realize_output: bool = False) -> TrackedTinygradModel:
        _require_tinygrad()
        if isinstance(model, TrackedModel):  # wrapping again replaces the identity, never logs twice
            model = model.model
        if not callable(model):
            raise TypeError(f"aither-tinygrad wraps callables (models with __call__, functions), not {model!r}")
        return TrackedTinygradModel(model, ModelLogger(options, "tinygrad"), realize_output=realize_output)


integration = TinygradIntegration()


#: Wrap any callable on tinygrad Tensors (a model, a function), claimed or not:
#: ``aither_tinygrad.wrap(model, name=..., realize_output=False)``. ``realize_output=True`` realises each output
#: on the calling thread so that its values are logged; by default outputs stay lazy and a lazy output is logged
#: by shape, dtype and device.
wrap = integration.wrap_model
