"""The guard of the students' self-checks (:mod:`filterlib.selfcheck`, chapters/instructors.md): while a student's
function runs, the filterlib functions that compute what the exercise asks for refuse to run.

Refusal goes by identity, not by name. :func:`refusing` swaps the code (``__code__``) of each refused function
object for a stand-in that raises :class:`~filterlib.selfcheck.CheckFailed`, and puts the original code back
afterwards, whatever happens. Every reference to the function object is caught: ``fl.forward``,
``from filterlib.model import forward``, a lambda or a default argument that captured it, a module alias. The
stand-in has the original's free variables, so functions with a closure are swapped too. Guards nest: each one
puts back the code it found, in reverse order.

:func:`refused` chooses the functions: the public functions that compute the answer (given by the check), their
private helpers (found by following the names their code uses: underscore functions and the methods of underscore
classes, in filterlib), minus everything that an allowed function uses (a kernel shared with ``fl.forward`` in the
gradient-step check stays usable). A refusal is remembered: an answer that catches the error still fails.
"""
from __future__ import annotations

import contextlib
import types

from ._selfcheck_report import CheckFailed

_STAND_INS: dict = {}       # original code object -> its stand-in code object
_NAMES: dict = {}           # stand-in code object -> "filterlib.module.function"
_ACTIVE: list = []          # (check name, refusals recorded) of the guards in force, innermost last

_RAISE = ("raise __import__('filterlib._selfcheck_guard', fromlist=['refusal'])"
          ".refusal(__import__('sys')._getframe(0).f_code)")


def qualified(f) -> str:
    """The name a student knows ``f`` by, e.g. ``filterlib.model.forward`` or ``filterlib.theory.A_matrices``."""
    return f"{f.__module__}.{f.__qualname__}"


def _stand_in(f) -> types.CodeType:
    """A code object that raises the refusal, with the same free variables as ``f``'s (so it fits f's closure)."""
    code = f.__code__
    if code not in _STAND_INS:
        free = code.co_freevars
        lines = ["def _outer():", *(f"    {name} = None" for name in free),
                 "    def _refused(*_refused_args, **_refused_kwargs):", f"        {_RAISE}"]
        if free:                                                    # never run: only makes them free variables
            lines.append(f"        {', '.join(free)}")
        lines.append("    return _refused")
        space: dict = {}
        source = "\n".join(lines)       # built here from filterlib's own free-variable names, never from data
        exec(compile(source, f"<refused {qualified(f)}>", "exec"), space)  # safe: a template of this module
        stand_in = space["_outer"]().__code__
        if len(stand_in.co_freevars) != len(free):                  # not expected; never swap a misfit
            raise RuntimeError(f"cannot guard {qualified(f)}: free variables {free}")
        stand_in = stand_in.replace(co_name=code.co_name)
        _STAND_INS[code] = stand_in
        _NAMES[stand_in] = qualified(f)
    return _STAND_INS[code]


def refusal(code: types.CodeType) -> CheckFailed:
    """The error a refused function raises (called by its stand-in code), recorded for the innermost guard."""
    name = _NAMES.get(code, "a filterlib function")
    check, record = _ACTIVE[-1] if _ACTIVE else ("the check", [])
    message = (f"✗ {check}: your function calls {name} (directly or through another filterlib function), which "
               f"computes what this exercise asks you to write. Write it yourself from its definition.")
    record.append(message)
    return CheckFailed(message)


@contextlib.contextmanager
def refusing(check: str, functions):
    """While in force, every function of ``functions`` raises CheckFailed naming ``check`` and itself. Yields the
    list of refusals that happened (non-empty: the answer called a refused function, even if it caught the error)."""
    record: list = []
    swapped = []
    entry = (check, record)
    _ACTIVE.append(entry)
    try:
        for f in functions:
            stand_in = _stand_in(f)
            swapped.append((f, f.__code__))
            f.__code__ = stand_in
        yield record
    finally:
        for f, code in reversed(swapped):
            f.__code__ = code
        del _ACTIVE[next(i for i, e in enumerate(_ACTIVE) if e is entry)]     # by identity: names may repeat


# --------------------------------------------------------------------------------------------------------------
# Which functions


def _in_filterlib(obj) -> bool:
    return isinstance(obj, types.FunctionType) and str(obj.__globals__.get("__name__", "")).startswith("filterlib")


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _names(code: types.CodeType) -> set:
    out = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            out |= _names(const)
    return out


def _methods(cls) -> list:
    out = []
    for value in vars(cls).values():
        value = getattr(value, "__func__", value)                   # staticmethod, classmethod
        if isinstance(value, property):
            out += [g for g in (value.fget, value.fset) if g is not None]
        elif isinstance(value, types.FunctionType):
            out.append(value)
    return out


def callees(f, *, private_only: bool) -> list:
    """The filterlib functions the code of ``f`` names (global names, attributes of filterlib modules, its
    closure): with ``private_only``, only underscore functions and the methods of underscore classes."""
    names = _names(f.__code__)
    found = [cell.cell_contents for cell in (f.__closure__ or ()) if cell.cell_contents is not None]
    for name in names:
        obj = f.__globals__.get(name)
        if isinstance(obj, types.ModuleType) and obj.__name__.startswith("filterlib"):
            found += [getattr(obj, attr) for attr in names if hasattr(obj, attr)]
        elif obj is not None:
            found.append(obj)
    out = []
    for obj in found:
        if isinstance(obj, type) and obj.__module__.startswith("filterlib"):
            if _private(obj.__name__) or not private_only:
                out += [m for m in _methods(obj) if _in_filterlib(m)]
        elif _in_filterlib(obj) and (_private(obj.__name__) or not private_only):
            out.append(obj)
    return out


def _closure(roots, *, private_only: bool) -> dict:
    seen = {id(f): f for f in roots}
    todo = list(roots)
    while todo:
        for g in callees(todo.pop(), private_only=private_only):
            if id(g) not in seen:
                seen[id(g)] = g
                todo.append(g)
    return seen


def refused(forbidden, allowed=()) -> tuple:
    """The functions to refuse: ``forbidden`` and their private helpers, minus every function that one of
    ``allowed`` uses (directly or not)."""
    keep = _closure(list(allowed), private_only=False)
    return tuple(f for key, f in _closure(list(forbidden), private_only=True).items() if key not in keep)
