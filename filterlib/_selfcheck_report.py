"""What the students' self-checks (:mod:`filterlib.selfcheck`, listed in chapters/instructors.md) say: the
:class:`CheckFailed` error, the descriptions of inputs and results, the pass line, the checks on a returned value
(None, a complex or non-finite result, a wrong shape) and the comparison with the expected value.

A private module of :mod:`filterlib.selfcheck`, which re-exports :class:`CheckFailed`.
"""
from __future__ import annotations

import math
import os
import traceback
import types

import numpy as np
import torch

F64 = torch.float64
HERE = os.path.dirname(os.path.abspath(__file__))


class CheckFailed(AssertionError):
    """Your function disagrees with filterlib on a case (the message says which, and how): raised by every check
    (chapters/instructors.md lists them).

    In a notebook only the message is shown (no traceback into the checks' modules).
    """

    def _render_traceback_(self):                     # IPython shows these lines instead of a traceback
        return [f"CheckFailed: {line}" if i == 0 else line for i, line in enumerate(str(self).splitlines())]


CheckFailed.__module__ = "filterlib.selfcheck"        # where students meet it (help(), the notebook's error line)


# --------------------------------------------------------------------------------------------------------------
# Descriptions


def fmt(x: float) -> str:
    return f"{x:.6g}"


def show(value) -> str:
    """A short description of an input or a result: small tensors in full, larger ones by shape and first values."""
    if isinstance(value, torch.Generator):
        return f"a torch.Generator (seed {value.initial_seed()})"
    if isinstance(value, (bool, int)):
        return repr(value)
    if isinstance(value, float):
        return fmt(value)
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu()
        if t.dim() == 0:
            return fmt(float(t))
        flat = t.reshape(-1).tolist()
        body = ", ".join(fmt(float(x)) for x in flat[:6])
        if t.numel() <= 6:
            return f"[{body}] (shape {tuple(t.shape)})"
        return f"shape {tuple(t.shape)}, first values [{body}, …]"
    return repr(value)


def inputs_text(case) -> list[str]:
    return [f"    {name} = {show(value)}" for name, value in case.args.items()]


def failure(name: str, index: int, total: int, case, lines: list[str], seed: int | None = None) -> CheckFailed:
    """The error for case ``index`` of ``total``: its label and inputs, ``lines``, and how to rebuild its inputs."""
    head = f"✗ {name}: case {index} of {total} ({case.label}) fails."
    again = f"{index}" if seed is None else f"{index}, seed={seed}"
    tail = f"  Rerun it: {', '.join(case.args)} = selfcheck.inputs({name!r}, {again})"
    return CheckFailed("\n".join([head, "  inputs:", *inputs_text(case), *lines, tail]))


def passed(name: str, total: int, what: str, drawn: int = 0) -> None:
    """The pass message: two short lines (they fit the book's column), the second saying what the cases cover."""
    seeded = f", {drawn} of them drawn from the seed" if drawn else ""
    print(f"✓ {name}: passed {total} cases{seeded}\n  ({what})", flush=True)


# --------------------------------------------------------------------------------------------------------------
# The student's own errors, shown without the checks' frames


def own_file(filename: str) -> bool:
    """Whether ``filename`` is one of the checks' modules (filterlib/selfcheck.py, filterlib/_selfcheck_*.py)."""
    base = os.path.basename(filename)
    return os.path.dirname(os.path.abspath(filename)) == HERE and base.startswith(("selfcheck", "_selfcheck"))


def without_checks(tb):
    """The traceback ``tb`` without the frames of the checks' modules (what is left is the student's own code)."""
    kept = []
    while tb is not None:
        if not own_file(tb.tb_frame.f_code.co_filename):
            kept.append(tb)
        tb = tb.tb_next
    out = None
    for t in reversed(kept):
        out = types.TracebackType(out, t.tb_frame, t.tb_lasti, t.tb_lineno)
    return out


def student_traceback(exc: BaseException) -> None:
    """Let IPython show ``exc`` (raised by the student's function) without the checks' frames.

    The exception itself is unchanged (same object, type and message); it only gains IPython's
    ``_render_traceback_`` hook. Outside IPython nothing changes.
    """
    def render():
        tb = without_checks(exc.__traceback__)
        try:
            from IPython import get_ipython
            shell = get_ipython()
            if shell is not None:
                return shell.InteractiveTB.structured_traceback(type(exc), exc, tb)
        except Exception:                                              # never let the rendering itself fail
            pass
        return "".join(traceback.format_exception(type(exc), exc, tb)).splitlines()
    try:
        exc._render_traceback_ = render
    except (AttributeError, TypeError):
        pass


# --------------------------------------------------------------------------------------------------------------
# The returned value


def _index(flat_position: int, shape: tuple) -> str:
    return "" if not shape else f" at index {tuple(int(i) for i in np.unravel_index(flat_position, shape))}"


def _as_array(got):
    """A non-tensor result as a numpy array, or None when it is no array of numbers."""
    try:
        arr = np.asarray(got)
        if arr.dtype == object:
            arr = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return arr if arr.dtype.kind in "biufc" else None


def as_tensor(got, shape: tuple, fail) -> torch.Tensor:
    """The result ``got`` as a real CPU tensor of shape ``shape``, or ``fail(lines)`` (a CheckFailed) saying why not:
    None, not an array of numbers, complex, the wrong shape, NaN or ±inf (in this order, before any comparison)."""
    if got is None:
        raise fail(["  your function returned None: did you forget `return`?"])
    if isinstance(got, torch.Tensor):
        t = got.detach().cpu()
    else:
        arr = _as_array(got)
        if arr is None:
            raise fail([f"  your function returned a {type(got).__name__}; expected a tensor of shape {shape}"])
        t = torch.as_tensor(arr if arr.dtype.kind == "c" else arr.astype(np.float64))
    if t.is_complex():
        raise fail([f"  your function returned a complex result ({str(t.dtype).replace('torch.', '')}); the answer "
                    f"is real: return a real float64 tensor (a complex step, such as torch.linalg.eigvals, leaves an "
                    f"imaginary part: use a real routine, such as torch.linalg.eigvalsh)"])
    if not t.is_floating_point():
        t = t.to(F64)
    if tuple(t.shape) != tuple(shape):
        hint = "  (same number of entries: reshape it)" if t.numel() == math.prod(shape) else ""
        raise fail([f"  expected a result of shape {tuple(shape)}, got shape {tuple(t.shape)}{hint}"])
    bad = ~torch.isfinite(t)
    if bool(bad.any()):
        where = int(bad.reshape(-1).to(torch.uint8).argmax())
        value = float(t.reshape(-1)[where])
        what = "NaN" if math.isnan(value) else f"an infinite value ({value})"
        raise fail([f"  got:      {show(t)}", f"  your result contains {what}{_index(where, tuple(shape))}: "
                    f"look for a division by zero, or arccos/sqrt/log of a value out of range"])
    return t


def compare(got: torch.Tensor, expected: torch.Tensor, rtol: float, atol: float, fail) -> None:
    """Raise ``fail(lines)`` unless |got − expected| ≤ atol + rtol·|expected| everywhere (``got`` from
    :func:`as_tensor`)."""
    e, g = expected.to(F64), got.to(F64)
    allowed = atol + rtol * e.abs()
    diff = (g - e).abs()
    bad = ~(diff <= allowed)
    if not bool(bad.any()):
        return
    worst = int(diff.reshape(-1).argmax())
    lines = [f"  expected: {show(expected)}", f"  got:      {show(got)}",
             f"  largest difference {fmt(float(diff.reshape(-1)[worst]))}{_index(worst, tuple(e.shape))} "
             f"(allowed {atol:g} + {rtol:g}·|expected|)"]
    if got.dtype == torch.float32:
        lines.append("  note: your result is float32; the inputs are float64, keep their dtype")
    raise fail(lines)
