"""Self-checks for the book's exercises: call one on your own function, e.g. ``selfcheck.check_gd_step(gd_step)``.

Every check builds the same list of random cases each time it runs (fixed seeds; several shapes, with edge
cases such as one patch, k = 1, or p = 1), calls your function on each case and compares the answer with
filterlib's own implementation. It prints ``✓ check_xxx: passed N cases`` when every case agrees. Otherwise it
raises :class:`CheckFailed` describing the *first* case that disagrees: the inputs (shapes and first values),
the expected and the returned value, and where they differ most. ``selfcheck.inputs("check_xxx", i)`` returns the
inputs of case ``i`` so that you can rerun your function on them. A check never shows filterlib's code.

A check also fails when your function calls the filterlib function the exercise asks you to write (for example
``filterlib.gradient`` inside ``check_gd_step``), changes one of its inputs in place, or returns None.
A stub that raises ``NotImplementedError`` makes the check raise that same error, unchanged.

The checks, the function each one takes, and where it is used:

* :func:`check_forward`: ``f(w, Z)``, the network output, shape (n,). chapters/gd_gaussian.md (the model).
* :func:`check_population_gradient`: ``g(w, w_star, Z)`` for k = 1, from the A-matrices. chapters/one_neuron.md.
* :func:`check_gamma`: ``gamma_hat(Z, w_star, W)``, the estimate of γ(φ). chapters/smoothness.md (Definition 3.1).
* :func:`check_gd_step`: ``step(w, w_star, Z, eta)``. chapters/rate.md (Theorem 3.2).
* :func:`check_conv_gradient`: ``g(w, w_star, Z)`` through Z_w, any k. chapters/conv_model.md (Theorem 4.1).
* :func:`check_rho`: ``rho(Z)``. chapters/closeness.md (Theorem 4.3).
* :func:`check_sgd_step`: ``step(w, w_star, Z, eta, batch_size, generator)``. chapters/sgd.md (Theorem 4.2).
* :func:`check_ball_sampler`: ``sample(m, p, radius, generator)``. chapters/init.md (Theorem 4.4).
* :func:`check_loss`: ``loss(w, w_star, Z)``, a number. The example of chapters/instructors.md.

All inputs are float64 CPU tensors; keep their dtype. Output goes to stdout (a failure is an exception).
"""
from __future__ import annotations

import contextlib
import math
import sys
import traceback
import types
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from . import initialization as _initialization
from . import model as _model
from . import theory as _theory
from . import train as _train

__all__ = ["CheckFailed", "check_ball_sampler", "check_conv_gradient", "check_forward", "check_gamma",
           "check_gd_step", "check_loss", "check_population_gradient", "check_rho", "check_sgd_step", "inputs"]

F64 = torch.float64


class CheckFailed(AssertionError):
    """Your function disagrees with filterlib on a case (the message says which, and how): raised by every check
    (chapters/instructors.md lists them).

    In a notebook only the message is shown (no traceback into this module).
    """

    def _render_traceback_(self):                     # IPython shows these lines instead of a traceback
        return [f"CheckFailed: {line}" if i == 0 else line for i, line in enumerate(str(self).splitlines())]


@dataclass
class _Case:
    label: str
    args: dict                                        # the arguments of the student's function, by name
    extra: dict = field(default_factory=dict)         # anything the comparison needs


# --------------------------------------------------------------------------------------------------------------
# Formatting


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def _show(value) -> str:
    """A short description of an input or a result: small tensors in full, larger ones by shape and first values."""
    if isinstance(value, torch.Generator):
        return f"a torch.Generator (seed {value.initial_seed()})"
    if isinstance(value, (bool, int)):
        return repr(value)
    if isinstance(value, float):
        return _fmt(value)
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu()
        if t.dim() == 0:
            return _fmt(float(t))
        flat = t.reshape(-1).tolist()
        body = ", ".join(_fmt(float(x)) for x in flat[:6])
        if t.numel() <= 6:
            return f"[{body}] (shape {tuple(t.shape)})"
        return f"shape {tuple(t.shape)}, first values [{body}, …]"
    return repr(value)


def _inputs_text(case: _Case) -> list[str]:
    return [f"    {name} = {_show(value)}" for name, value in case.args.items()]


def _failure(name: str, index: int, total: int, case: _Case, lines: list[str]) -> CheckFailed:
    head = f"✗ {name}: case {index} of {total} ({case.label}) fails."
    tail = f"  Rerun it: {', '.join(case.args)} = selfcheck.inputs({name!r}, {index})"
    return CheckFailed("\n".join([head, "  inputs:", *_inputs_text(case), *lines, tail]))


def _passed(name: str, total: int, what: str) -> None:
    print(f"✓ {name}: passed {total} cases ({what})", flush=True)


# --------------------------------------------------------------------------------------------------------------
# Running a function on a case


def _clone(value):
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, torch.Generator):
        g = torch.Generator()
        g.manual_seed(value.initial_seed())
        return g
    return value


@contextlib.contextmanager
def _forbid(name: str, funcs):
    """Replace the filterlib functions ``funcs`` (wherever a filterlib module holds them) by one that fails."""
    saved = []
    modules = [m for key, m in list(sys.modules.items()) if key == "filterlib" or key.startswith("filterlib.")]
    for f in funcs:
        qual = f"filterlib.{f.__module__.split('.', 1)[-1]}.{f.__name__}"

        def blocked(*args, _qual=qual, **kwargs):
            raise CheckFailed(f"✗ {name}: your function calls {_qual} (directly or through another filterlib "
                              f"function), which computes what this exercise asks you to write. Write it yourself "
                              f"from its definition.")
        for mod in modules:
            for attr, val in list(vars(mod).items()):
                if val is f:
                    saved.append((mod, attr, val))
                    setattr(mod, attr, blocked)
    try:
        yield
    finally:
        for mod, attr, val in reversed(saved):
            setattr(mod, attr, val)


def _without_this_module(tb):
    """The traceback ``tb`` without the frames of this module (what is left is the student's own code)."""
    kept = []
    while tb is not None:
        if tb.tb_frame.f_code.co_filename != __file__:
            kept.append(tb)
        tb = tb.tb_next
    out = None
    for t in reversed(kept):
        out = types.TracebackType(out, t.tb_frame, t.tb_lasti, t.tb_lineno)
    return out


def _student_traceback(exc: BaseException) -> None:
    """Let IPython show ``exc`` (raised by the student's function) without this module's frames.

    The exception itself is unchanged (same object, type and message); it only gains IPython's
    ``_render_traceback_`` hook. Outside IPython nothing changes.
    """
    def render():
        tb = _without_this_module(exc.__traceback__)
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


def _call(name, fn, case, index, total, forbidden):
    """Call the student's function on fresh copies of the case's inputs; check that it left them unchanged."""
    args = {key: _clone(value) for key, value in case.args.items()}
    try:
        with _forbid(name, forbidden):
            got = fn(*args.values())
    except CheckFailed:
        raise
    except NotImplementedError as exc:
        _student_traceback(exc)
        raise                                                          # a stub's message, unchanged
    except Exception as exc:
        print("\n".join([f"✗ {name}: your function raised {type(exc).__name__} on case {index} of {total} "
                         f"({case.label}), with inputs", *_inputs_text(case)]), flush=True)
        _student_traceback(exc)
        raise
    for key, value in case.args.items():
        if isinstance(value, torch.Tensor) and not torch.equal(args[key], value):
            raise _failure(name, index, total, case, [
                f"  your function changed its input `{key}` in place; work on a copy (e.g. w = w - …, not w -= …)"])
    return got


def _as_tensor(name, got, expected: torch.Tensor, case, index, total) -> torch.Tensor:
    if got is None:
        raise _failure(name, index, total, case, ["  your function returned None: did you forget `return`?"])
    if isinstance(got, torch.Tensor):
        t = got.detach().cpu()
    else:
        try:
            t = torch.as_tensor(np.asarray(got, dtype=np.float64))
        except (TypeError, ValueError):
            raise _failure(name, index, total, case, [
                f"  your function returned a {type(got).__name__}; expected a tensor of shape "
                f"{tuple(expected.shape)}"]) from None
    if not (t.is_floating_point() or t.is_complex()):
        t = t.to(F64)
    if tuple(t.shape) != tuple(expected.shape):
        hint = "  (same number of entries: reshape it)" if t.numel() == expected.numel() else ""
        raise _failure(name, index, total, case, [
            f"  expected a result of shape {tuple(expected.shape)}, got shape {tuple(t.shape)}{hint}"])
    return t


def _compare(name, got, expected, case, index, total, rtol, atol):
    got = _as_tensor(name, got, expected, case, index, total)
    e, g = expected.to(F64), got.to(F64)
    allowed = atol + rtol * e.abs()
    diff = (g - e).abs()
    bad = ~(diff <= allowed)                                           # NaN counts as bad
    if not bool(bad.any()):
        return
    flat = torch.where(torch.isnan(diff), torch.full_like(diff, math.inf), diff).reshape(-1)
    worst = int(flat.argmax())
    where = "" if e.dim() == 0 else f" at index {tuple(int(i) for i in np.unravel_index(worst, tuple(e.shape)))}"
    lines = [f"  expected: {_show(expected)}", f"  got:      {_show(got)}"]
    if bool(torch.isnan(g).any()):
        lines.append("  your result contains NaN")
    else:
        lines.append(f"  largest difference {_fmt(float(diff.reshape(-1)[worst]))}{where} "
                     f"(allowed {atol:g} + {rtol:g}·|expected|)")
    if got.dtype == torch.float32:
        lines.append("  note: your result is float32; the inputs are float64, keep their dtype")
    raise _failure(name, index, total, case, lines)


def _run(name, fn, cases, reference, *, rtol=1e-7, atol=1e-9, forbidden=(), what=""):
    """Compare fn with the reference on every case; print a pass line or raise on the first mismatch."""
    if not callable(fn):
        raise TypeError(f"{name} takes your function itself, e.g. {name}(my_function), got {type(fn).__name__}")
    total = len(cases)
    for index, case in enumerate(cases, 1):
        expected = reference(**{key: _clone(value) for key, value in case.args.items()})
        got = _call(name, fn, case, index, total, forbidden)
        _compare(name, got, expected, case, index, total, rtol, atol * max(1.0, float(expected.abs().max())))
    _passed(name, total, what)


# --------------------------------------------------------------------------------------------------------------
# Deterministic cases


def _gen(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def _randn(g, *shape):
    return torch.randn(*shape, generator=g, dtype=F64, device=g.device)


def _filter_cases(seed: int, shapes, *, k_one_only=False):
    """(label, w, w_star, Z) for each (n, k, p): random w, and w = w*, w = −w* on some shapes."""
    out = []
    for j, (n, k, p) in enumerate(shapes):
        g = _gen(seed + j)
        Z = _randn(g, n, k, p)
        w_star = _randn(g, p)
        w = _randn(g, p)
        out.append((f"n={n}, k={k}, p={p}, random w", w, w_star, Z))
        if j % 2 == 0:
            out.append((f"n={n}, k={k}, p={p}, w = w*", w_star.clone(), w_star, Z))
        if j % 3 == 1:
            out.append((f"n={n}, k={k}, p={p}, w = −0.5 w*", -0.5 * w_star, w_star, Z))
    return out


def _cases(name: str) -> list[_Case]:
    """The cases of one check, rebuilt from fixed seeds on every call (so they never change)."""
    if name == "check_forward":
        shapes = [(7, 1, 1), (5, 1, 3), (9, 4, 3), (6, 25, 9), (1, 3, 2)]
        return [_Case(label, {"w": w, "Z": Z}) for label, w, _, Z in _filter_cases(10, shapes)]
    if name == "check_loss":
        shapes = [(50, 1, 2), (7, 1, 1), (30, 4, 3), (200, 9, 5)]
        return [_Case(label, {"w": w, "w_star": ws, "Z": Z}) for label, w, ws, Z in _filter_cases(90, shapes)]
    if name == "check_population_gradient":
        shapes = [(500, 1, 5), (7, 1, 1), (40, 1, 2), (1, 1, 3), (200, 1, 4)]
        return [_Case(label, {"w": w, "w_star": ws, "Z": Z}) for label, w, ws, Z in _filter_cases(20, shapes)]
    if name == "check_conv_gradient":
        shapes = [(300, 3, 4), (50, 1, 3), (20, 8, 1), (100, 5, 9), (2, 2, 2)]
        return [_Case(label, {"w": w, "w_star": ws, "Z": Z}) for label, w, ws, Z in _filter_cases(30, shapes)]
    if name == "check_gd_step":
        shapes = [(200, 1, 2), (60, 4, 3), (30, 1, 1), (100, 9, 5)]
        etas = [1.0, 0.5, 0.1, 2.0, 0.05, 0.3, 1.5, 0.7]
        return [_Case(label, {"w": w, "w_star": ws, "Z": Z, "eta": etas[i % len(etas)]})
                for i, (label, w, ws, Z) in enumerate(_filter_cases(40, shapes))]
    if name == "check_gamma":
        out = []
        specs = [(2, 2, math.pi / 4, 1.0), (4, 16, math.pi / 8, 1.0), (3, 1, math.pi / 2, 1.0),
                 (5, 8, 3 * math.pi / 4, 2.5), (2, 2, 0.1, 1.0), (6, 32, math.pi / 3, 0.7)]
        for j, (p, m, phi, scale) in enumerate(specs):
            g = _gen(50 + j)
            Z = (_randn(g, 2000, 1, p) if j % 2 == 0
                 else torch.empty(2000, 1, p, dtype=F64).uniform_(-1, 1, generator=g))
            w_star = _randn(g, p)
            W = scale * _theory.directions_at_angle(w_star, phi, m, generator=g)
            law = "Gaussian" if j % 2 == 0 else "uniform cube"
            out.append(_Case(f"{law}, p={p}, {m} filter{'s' * (m > 1)} at φ = {phi:.4g}" +
                             (f", ‖w‖ = {scale}" if scale != 1 else ""), {"Z": Z, "w_star": w_star, "W": W}))
        return out
    if name == "check_rho":
        out = []
        for j, (n, k, p, spread) in enumerate([(50, 4, 3, 0.3), (20, 1, 5, 1.0), (100, 9, 2, 1.0),
                                               (10, 2, 1, 0.5), (30, 25, 9, 0.05)]):
            g = _gen(60 + j)
            base = _randn(g, n, 1, p)
            Z = base + spread * _randn(g, n, k, p)
            out.append(_Case(f"n={n}, k={k}, p={p}", {"Z": Z}))
        g = _gen(69)
        same = _randn(g, 8, 1, 3).expand(8, 5, 3).contiguous()
        out.append(_Case("n=8, k=5, p=3, all patches of an input equal", {"Z": same}))
        return out
    if name == "check_sgd_step":
        out = []
        for j, (n, k, p, b, eta) in enumerate([(100, 1, 3, 1, 0.5), (50, 4, 5, 8, 0.2), (5, 2, 2, 16, 1.0),
                                               (200, 9, 4, 32, 0.05), (1, 1, 1, 3, 0.3)]):
            g = _gen(70 + j)
            Z = _randn(g, n, k, p)
            w_star, w = _randn(g, p), _randn(g, p)
            out.append(_Case(f"n={n}, k={k}, p={p}, batch_size={b}",
                             {"w": w, "w_star": w_star, "Z": Z, "eta": eta, "batch_size": b,
                              "generator": _gen(700 + j)}))
        return out
    if name == "check_ball_sampler":
        return [_Case(f"m=20000, p={p}, radius={r}", {"m": 20_000, "p": p, "radius": r, "generator": _gen(80 + j)})
                for j, (p, r) in enumerate([(2, 1.0), (1, 0.5), (3, 2.0), (10, 0.3), (25, 1.0 / math.sqrt(50))])]
    raise ValueError(f"no check named {name!r}; the checks are {', '.join(sorted(_CHECK_NAMES))}")


def inputs(check: str, case: int) -> tuple:
    """The inputs of case ``case`` (numbered from 1, as in a failure message) of the check named ``check``,
    in the order of your function's arguments: ``w, w_star, Z, eta = selfcheck.inputs("check_gd_step", 4)``.
    Shown in every failure message (chapters/instructors.md)."""
    cases = _cases(check)
    if not 1 <= case <= len(cases):
        raise ValueError(f"{check} has cases 1 to {len(cases)}, got {case}")
    values = tuple(_clone(v) for v in cases[case - 1].args.values())
    return values[0] if len(values) == 1 else values


# --------------------------------------------------------------------------------------------------------------
# References (filterlib's own functions; never shown)


def _ref_forward(w, Z):
    return _model.forward(w, Z)


def _ref_loss(w, w_star, Z):
    return _model.loss(w, w_star, Z)


def _ref_gradient(w, w_star, Z):
    return _model.gradient(w, w_star, Z)


def _ref_gd_step(w, w_star, Z, eta):
    return w - eta * _model.gradient(w, w_star, Z)


def _ref_gamma(Z, w_star, W):
    A_pos, _ = _theory.A_matrices(W, w_star, Z)
    return torch.linalg.eigvalsh(A_pos)[:, 0].min()


def _ref_rho(Z):
    return _theory.rho(Z)


def _ref_sgd_step(w, w_star, Z, eta, batch_size, generator):
    idx = torch.randint(Z.shape[0], (batch_size,), generator=generator, device=generator.device)
    return w - eta * _model.gradient(w, w_star, Z[idx])


# --------------------------------------------------------------------------------------------------------------
# The checks


def check_forward(fn: Callable) -> None:
    """Check ``fn(w, Z)`` = f(w, Z) = (1/k) Σ_i relu(wᵀZ_i), one value per input: shape (n,) for a filter ``w``
    (p,) and a sample ``Z`` (n, k, p). Used in chapters/gd_gaussian.md (the model of the introduction).
    Reference: :func:`filterlib.forward` (which ``fn`` must not call)."""
    _run("check_forward", fn, _cases("check_forward"), _ref_forward,
         forbidden=(_model.forward,), what="k = 1 to 25 patches, p = 1 to 9")


def check_loss(fn: Callable) -> None:
    """Check ``fn(w, w_star, Z)`` = ℓ̂(w) = ½ mean_n (f(w, Z_n) − f(w*, Z_n))², a number, on the sample ``Z`` (n, k, p).
    Not used by a chapter's exercise: it is the example of the instructor page (chapters/instructors.md) and a
    check for new exercises. Reference: :func:`filterlib.loss` (which ``fn`` must not call)."""
    _run("check_loss", fn, _cases("check_loss"), _ref_loss, forbidden=(_model.loss,),
         what="k = 1 to 9 patches, p = 1 to 5, w = w* included")


def check_population_gradient(fn: Callable) -> None:
    """Check ``fn(w, w_star, Z)`` = A_w w − A_{w,w*} w* for one patch (k = 1): the gradient of the loss on the
    sample ``Z`` (n, 1, p), with A_{w,w*} = mean ZZᵀ1{wᵀZ ≥ 0, w*ᵀZ ≥ 0}, A_{w,−w*} = mean ZZᵀ1{wᵀZ ≥ 0, w*ᵀZ < 0}
    and A_w = A_{w,w*} + A_{w,−w*}. Used in chapters/one_neuron.md (the population gradient, Theorem 3.1).
    Reference: :func:`filterlib.gradient`; ``fn`` must not call it nor :func:`filterlib.theory.A_matrices`."""
    _run("check_population_gradient", fn, _cases("check_population_gradient"), _ref_gradient,
         forbidden=(_model.gradient, _theory.A_matrices, _theory.conv_moments, _theory.four_region_gradient,
                    _train.gradient_descent), what="p = 1 to 5, n = 1 to 500, w = w* and w = −w*/2 included")


def check_conv_gradient(fn: Callable) -> None:
    """Check ``fn(w, w_star, Z)`` = E[Z_w Z_wᵀ] w − E[Z_w Z_w*ᵀ] w* on the sample ``Z`` (n, k, p), with
    Z_v = (1/k) Σ_i Z_i 1{vᵀZ_i ≥ 0} and E the mean over the n inputs. Used in chapters/conv_model.md (the
    gradient of the convolutional model, Theorem 4.1's proof). Reference: :func:`filterlib.gradient`; ``fn`` must
    not call it nor :func:`filterlib.theory.conv_moments` / :func:`~filterlib.theory.four_region_gradient`."""
    _run("check_conv_gradient", fn, _cases("check_conv_gradient"), _ref_gradient,
         forbidden=(_model.gradient, _theory.conv_moments, _theory.four_region_gradient, _theory.A_matrices,
                    _train.gradient_descent), what="k = 1 to 8 patches, p = 1 to 9, w = w* and w = −w*/2 included")


def check_gd_step(fn: Callable) -> None:
    """Check ``fn(w, w_star, Z, eta)`` = w − η ∇ℓ̂(w): one gradient-descent step on the sample ``Z`` (n, k, p) with
    ℓ̂(w) = ½ mean_n (f(w, Z_n) − f(w*, Z_n))², so ∇ℓ̂(w) = mean_n (f(w, Z_n) − f(w*, Z_n)) Z_{w,n} with
    Z_{w,n} = (1/k) Σ_i Z_{n,i} 1{wᵀZ_{n,i} ≥ 0}. Used in chapters/rate.md (Theorem 3.2). Reference: one step of
    :func:`filterlib.gradient_descent`; ``fn`` must not call :func:`filterlib.gradient` (``fl.forward`` is fine)."""
    _run("check_gd_step", fn, _cases("check_gd_step"), _ref_gd_step,
         forbidden=(_model.gradient, _train.gradient_descent, _train.sgd, _theory.conv_moments,
                    _theory.four_region_gradient), what="k = 1 to 9 patches, p = 1 to 5, several steps η")


def check_gamma(fn: Callable) -> None:
    """Check ``fn(Z, w_star, W)`` = min over the rows w of ``W`` (m, p) of λ_min(A_{w,w*}): the estimate of γ(φ) of
    Definition 3.1 when the rows of W are the filters at angle φ from w* (``theory.directions_at_angle``), on a
    sample ``Z`` (n, 1, p). Returns a number. Used in chapters/smoothness.md (Definition 3.1). Reference: filterlib's
    A-matrices and eigenvalues (as in :func:`filterlib.theory.gamma`, which ``fn`` must not call;
    :func:`~filterlib.theory.A_matrices` is fine)."""
    _run("check_gamma", fn, _cases("check_gamma"), _ref_gamma, rtol=1e-7, atol=1e-10,
         forbidden=(_theory.gamma, _theory.conv_gamma), what="p = 2 to 6, 1 to 32 filters, Gaussian and cube laws")


def check_rho(fn: Callable) -> None:
    """Check ``fn(Z)`` = ρ = the largest angle θ(Z_i, Z_avg) in radians, over every input and patch of the sample
    ``Z`` (n, k, p), with Z_avg = (1/k) Σ_i Z_i the input's patch average. Returns a number. Used in
    chapters/closeness.md (Theorem 4.3). Reference: :func:`filterlib.theory.rho` (which ``fn`` must not call).
    Angles may differ by 1e-6 rad (``arccos`` of a cosine a rounding error above 1 gives NaN: clamp it)."""
    _run("check_rho", fn, _cases("check_rho"), _ref_rho, rtol=1e-6, atol=1e-6,
         forbidden=(_theory.rho, _theory.closeness_bounds), what="k = 1 to 25, p = 1 to 9, equal patches included")


def check_sgd_step(fn: Callable) -> None:
    """Check ``fn(w, w_star, Z, eta, batch_size, generator)``: one minibatch SGD step. Draw the minibatch with
    replacement as ``idx = torch.randint(n, (batch_size,), generator=generator)``, then return
    w − η ∇ℓ̂_B(w), the gradient of the loss on the examples ``Z[idx]`` (``fl.gradient`` is fine here).
    Used in chapters/sgd.md (Theorem 4.2). Reference: one step of :func:`filterlib.sgd`, which ``fn`` must not call."""
    name = "check_sgd_step"
    cases = _cases(name)
    total = len(cases)
    forbidden = (_train.sgd,)
    for index, case in enumerate(cases, 1):
        first = _call(name, fn, case, index, total, forbidden)
        again = _call(name, fn, case, index, total, forbidden)
        expected = _ref_sgd_step(**{key: _clone(value) for key, value in case.args.items()})
        first_t = _as_tensor(name, first, expected, case, index, total)
        again_t = _as_tensor(name, again, expected, case, index, total)
        if not torch.equal(first_t, again_t):
            raise _failure(name, index, total, case, [
                "  two calls with equally seeded generators gave different steps: draw the minibatch from "
                "`generator` (torch.randint(n, (batch_size,), generator=generator)), not from torch's global RNG"])
        _compare(name, first_t, expected, case, index, total, 1e-7, 1e-9 * max(1.0, float(expected.abs().max())))
    _passed(name, total, "batch sizes 1 to 32, k = 1 to 9, batches larger than n included")


def _ks_uniform(s: torch.Tensor) -> float:
    """Kolmogorov–Smirnov distance between the sample s (values in [0, 1]) and U[0, 1]."""
    s, _ = torch.sort(s.reshape(-1).to(F64))
    m = s.numel()
    i = torch.arange(1, m + 1, dtype=F64)
    return float(torch.maximum(i / m - s, s - (i - 1) / m).max())


def check_ball_sampler(fn: Callable) -> None:
    """Check ``fn(m, p, radius, generator)``: m points uniform in the p-dimensional ball of the given radius
    (centred at 0), shape (m, p), drawn from ``generator`` only. Statistical check with fixed seeds: every point in
    the ball, the radius law P(‖x‖ ≤ r) = (r/radius)^p and uniform directions (the law of (u·e)² along several
    fixed e), by Kolmogorov–Smirnov distances against 1.95/√m (a 0.1 % test per statistic). Used in
    chapters/init.md (Theorem 4.4). Reference: the laws that :func:`filterlib.initialization.ball` samples (which
    ``fn`` must not call)."""
    name = "check_ball_sampler"
    cases = _cases(name)
    total = len(cases)
    for index, case in enumerate(cases, 1):
        m, p, radius = case.args["m"], case.args["p"], case.args["radius"]
        shape_only = torch.empty(m, p, dtype=F64)
        forbidden = (_initialization.ball,)
        x = _as_tensor(name, _call(name, fn, case, index, total, forbidden), shape_only, case, index, total)
        y = _as_tensor(name, _call(name, fn, case, index, total, forbidden), shape_only, case, index, total)
        if not torch.equal(x, y):
            raise _failure(name, index, total, case, [
                "  two calls with equally seeded generators gave different points: draw every random number from "
                "`generator` (e.g. torch.rand(..., generator=generator)), not from torch's global RNG"])
        x = x.to(F64)
        if not bool(torch.isfinite(x).all()):
            raise _failure(name, index, total, case, ["  your points contain NaN or infinite values"])
        norms = x.norm(dim=1)
        j = int(norms.argmax())
        if float(norms[j]) > radius * (1 + 1e-6):
            raise _failure(name, index, total, case, [
                f"  point {j} = {_show(x[j])} has norm {_fmt(float(norms[j]))} > radius {_fmt(radius)}"])
        limit = 1.95 / math.sqrt(m)
        d = _ks_uniform((norms / radius) ** p)
        if d > limit:
            inside = float((norms <= radius / 2).to(F64).mean())
            raise _failure(name, index, total, case, [
                f"  the radii do not follow P(‖x‖ ≤ r) = (r/radius)^p: Kolmogorov–Smirnov distance {d:.4f} > "
                f"{limit:.4f}",
                f"  fraction of points within radius/2: {inside:.4f}, expected 2^-p = {0.5 ** p:.4f}",
                "  (a uniform point in the ball has ‖x‖ = radius·U^(1/p) with U uniform on [0, 1])"])
        nonzero = norms > 0
        u = x[nonzero] / norms[nonzero, None]
        if p == 1:
            frac = float((u[:, 0] > 0).to(F64).mean())
            if abs(frac - 0.5) > 2 / math.sqrt(m):
                raise _failure(name, index, total, case, [
                    f"  in one dimension half of the points should be positive, got a fraction {frac:.4f}"])
            continue
        g = _gen(1000 + index)
        directions = [("the first axis", torch.eye(p, dtype=F64)[0]),
                      ("the diagonal (1, …, 1)/√p", torch.ones(p, dtype=F64) / math.sqrt(p)),
                      ("a random direction", _randn(g, p))]
        for label, e in directions:
            e = e / e.norm()
            t = ((u @ e) ** 2).clamp(0, 1)                             # (u·e)² ~ Beta(1/2, (p − 1)/2)
            d = _ks_uniform(_initialization.betainc(0.5, (p - 1) / 2, t))
            if d > limit:
                raise _failure(name, index, total, case, [
                    f"  the directions x/‖x‖ are not uniform on the sphere: along {label} the law of (u·e)² is off "
                    f"(Kolmogorov–Smirnov distance {d:.4f} > {limit:.4f})",
                    "  (normalise a standard Gaussian vector for a uniform direction; a normalised cube point is not)"])
    _passed(name, total, "p = 1 to 25: in the ball, radius law (r/R)^p, uniform directions")


_CHECK_NAMES = ("check_ball_sampler", "check_conv_gradient", "check_forward", "check_gamma", "check_gd_step",
                "check_loss", "check_population_gradient", "check_rho", "check_sgd_step")
