"""Self-checks for the book's exercises: call one on your own function, e.g. ``selfcheck.check_gd_step(gd_step)``.

Every check builds the same list of random cases each time it runs (fixed seeds; several shapes, with edge
cases such as one patch, k = 1, or p = 1), calls your function on each case and compares the answer with
filterlib's own implementation. It prints ``✓ check_xxx: passed N cases`` when every case agrees. Otherwise it
raises :class:`CheckFailed` describing the *first* case that disagrees: the inputs (shapes and first values),
the expected and the returned value, and where they differ most. ``selfcheck.inputs("check_xxx", i)`` returns the
inputs of case ``i`` so that you can rerun your function on them. A check never shows filterlib's code.

Every check also takes ``seed=`` (a non-negative int): the public cases are then followed by as many cases again
or more, drawn from that seed (other sizes, edge cases included); an autograder keeps its seed to itself. The same
seed gives the same cases, and ``selfcheck.inputs("check_xxx", i, seed=s)`` returns them.

A check also fails, with its own message, when your function

* calls a filterlib function that computes what the exercise asks you to write (for example ``fl.gradient``
  inside ``check_gd_step``), under any name: the check refuses the function *object*, so an alias, a lambda or
  ``from filterlib.model import forward`` is caught too, and so are the kernels behind it and the checks' own
  references (the functions an exercise allows, such as ``fl.forward`` in ``check_gd_step``, keep working);
* returns None, a complex result, NaN or ±inf, or a result of the wrong shape;
* changes one of its inputs in place.

The expected values are computed only after your function has returned, so no expected value exists while it runs.
A stub that raises ``NotImplementedError`` makes the check raise that same error, unchanged; passing something
that is not a function raises TypeError.

The checks, the function each one takes, and where it is used:

* :func:`check_forward`: ``f(w, Z)``, the network output, shape (n,). chapters/gd_gaussian.md (the model).
* :func:`check_population_gradient`: ``g(w, w_star, Z)`` for k = 1, from the A-matrices. chapters/one_neuron.md.
* :func:`check_gamma`: ``gamma_hat(Z, w_star, W)``, the estimate of γ(φ). chapters/smoothness.md (Definition 3.1).
* :func:`check_gd_step`: ``step(w, w_star, Z, eta)``. chapters/rate.md (Theorem 3.2).
* :func:`check_conv_gradient`: ``g(w, w_star, Z)`` through Z_w, any k. chapters/conv_model.md (Theorem 4.1).
* :func:`check_rho`: ``rho(Z)``. chapters/closeness.md (Theorem 4.3).
* :func:`check_sgd_step`: ``step(w, w_star, Z, eta, batch_size, generator)``. chapters/sgd.md (Theorem 4.2).
* :func:`check_ball_sampler`: ``sample(m, p, radius, generator)``. chapters/init.md (Theorem 4.4).
* :func:`check_loss`: ``loss(w, w_star, Z)``, a number. chapters/gd_gaussian.md (and the example of
  chapters/instructors.md).

All inputs are float64 CPU tensors; keep their dtype. Output goes to stdout (a failure is an exception).
The cases live in ``filterlib/_selfcheck_cases.py``, the refusal of filterlib's functions in
``filterlib/_selfcheck_guard.py`` and the messages in ``filterlib/_selfcheck_report.py``.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from . import _selfcheck_cases as cs
from . import _selfcheck_guard as guard
from . import _selfcheck_report as rep
from . import _validate as v
from . import initialization as _initialization
from . import kernel as _kernel
from . import model as _model
from . import theory as _theory
from . import train as _train
from ._selfcheck_report import CheckFailed

__all__ = ["CheckFailed", "check_ball_sampler", "check_conv_gradient", "check_forward", "check_gamma",
           "check_gd_step", "check_loss", "check_population_gradient", "check_rho", "check_sgd_step", "inputs"]

F64 = torch.float64


def inputs(check: str, case: int, seed: int | None = None):
    """The inputs of case ``case`` (numbered from 1, as in a failure message) of the check named ``check``,
    in the order of your function's arguments: ``w, w_star, Z, eta = selfcheck.inputs("check_gd_step", 4)``;
    with ``seed``, the cases of ``check_xxx(fn, seed=seed)``. Shown in every failure message
    (chapters/instructors.md)."""
    check = cs.check_name(check)
    case = v.positive_int(case, "case")
    seed = None if seed is None else v.nonneg_int(seed, "seed")
    cases = cs.cases(check, seed)
    if case > len(cases):
        raise ValueError(f"case must be at most {len(cases)}: {check} has cases 1 to {len(cases)}"
                         f"{'' if seed is None else f' with seed={seed}'}, got {case}")
    values = tuple(cs.clone(x) for x in cases[case - 1].args.values())
    return values[0] if len(values) == 1 else values


# --------------------------------------------------------------------------------------------------------------
# References (filterlib's own functions; never shown, and refused while a student's function runs)


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


_REFS = (_ref_forward, _ref_loss, _ref_gradient, _ref_gd_step, _ref_gamma, _ref_rho, _ref_sgd_step)

# What each check refuses (the public functions computing its answer, or a step away from it: the gradient by
# autograd through fl.loss, the loss from a training history) and what it allows although a refused function
# shares code with it. Their private helpers are refused with them, unless an allowed function uses them too.
_GRADIENT = (_model.gradient, _model.loss, _kernel.loss_and_gradient, _kernel.fused_pass, _train.gradient_descent,
             _train.sgd, _theory.A_matrices, _theory.conv_moments, _theory.four_region_gradient,
             _theory.moment_sums)
_RULES = {
    "check_forward": ((_model.forward, _kernel.outputs, _kernel.labels, _kernel.fused_pass, _kernel.residual_pass),
                      ()),
    "check_loss": ((_model.loss, _model.relative_loss, _kernel.loss_and_gradient, _kernel.fused_pass,
                    _kernel.residual_pass, _train.gradient_descent, _train.sgd), (_model.forward,)),
    "check_population_gradient": (_GRADIENT, ()),
    "check_conv_gradient": (_GRADIENT, ()),
    "check_gd_step": (_GRADIENT, (_model.forward,)),
    "check_gamma": ((_theory.gamma, _theory.conv_gamma, _theory.gamma_avg, _theory.constants,
                     _theory.closeness_bounds, _theory.extreme, _theory.candidate_sums),
                    (_theory.A_matrices, _theory.directions_at_angle)),
    "check_rho": ((_theory.rho, _theory.closeness_bounds), ()),
    "check_sgd_step": ((_train.sgd,), (_model.gradient, _model.forward)),
    "check_ball_sampler": ((_initialization.ball,), (_initialization.directions, _initialization.sphere)),
}
_REFUSED: dict = {}


def _refused(name: str) -> tuple:
    """The function objects that refuse to run while a student's function runs in the check ``name``."""
    if name not in _REFUSED:
        forbidden, allowed = _RULES[name]
        _REFUSED[name] = guard.refused(forbidden + _REFS, allowed)
    return _REFUSED[name]


# --------------------------------------------------------------------------------------------------------------
# Running a function on a case


def _callable(name: str, fn) -> None:
    if not callable(fn):
        raise TypeError(f"{name} takes your function itself, e.g. {name}(my_function), got {type(fn).__name__}")


def _call(name, fn, case, index, total, seed):
    """Call the student's function on fresh copies of the case's inputs, with the answer's filterlib functions
    refused; check that it left its inputs unchanged."""
    args = {key: cs.clone(value) for key, value in case.args.items()}
    try:
        with guard.refusing(name, _refused(name)) as refusals:
            got = fn(*args.values())
    except CheckFailed:
        raise
    except NotImplementedError as exc:
        rep.student_traceback(exc)
        raise                                                          # a stub's message, unchanged
    except Exception as exc:
        if refusals:                                                   # it caught a refusal, then failed
            raise CheckFailed(refusals[0]) from None
        print("\n".join([f"✗ {name}: your function raised {type(exc).__name__} on case {index} of {total} "
                         f"({case.label}), with inputs", *rep.inputs_text(case)]), flush=True)
        rep.student_traceback(exc)
        raise
    if refusals:                                                       # it caught a refusal and went on
        raise CheckFailed(refusals[0])
    for key, value in case.args.items():
        if isinstance(value, torch.Tensor) and not torch.equal(args[key], value):
            raise rep.failure(name, index, total, case, [
                f"  your function changed its input `{key}` in place; work on a copy (e.g. w = w - …, not w -= …)"],
                seed)
    return got


def _failing(name, index, total, case, seed):
    return lambda lines: rep.failure(name, index, total, case, lines, seed)


def _compare(got, expected, rtol, atol, fail) -> None:
    got = rep.as_tensor(got, tuple(expected.shape), fail)
    rep.compare(got, expected, rtol, atol * max(1.0, float(expected.abs().max())), fail)


def _one(name, fn, case, index, total, seed, reference, rtol, atol) -> None:
    """One case: the answer first, then (only then) the expected value, then the comparison."""
    got = _call(name, fn, case, index, total, seed)
    expected = reference(**{key: cs.clone(value) for key, value in case.args.items()})
    _compare(got, expected, rtol, atol, _failing(name, index, total, case, seed))


def _drawn(cases) -> int:
    return sum(1 for case in cases if case.extra.get("drawn"))


def _run(name, fn, seed, reference, *, rtol=1e-7, atol=1e-9, what=""):
    """Compare fn with the reference on every case; print a pass line or raise on the first mismatch."""
    _callable(name, fn)
    cases = cs.cases(name, seed)
    for index, case in enumerate(cases, 1):
        _one(name, fn, case, index, len(cases), seed, reference, rtol, atol)
    rep.passed(name, len(cases), what, _drawn(cases))


# --------------------------------------------------------------------------------------------------------------
# The checks


def check_forward(fn: Callable, *, seed: int | None = None) -> None:
    """Check ``fn(w, Z)`` = f(w, Z) = (1/k) Σ_i relu(wᵀZ_i), one value per input: shape (n,) for a filter ``w``
    (p,) and a sample ``Z`` (n, k, p). Used in chapters/gd_gaussian.md (the model of the introduction).
    Reference: :func:`filterlib.forward` (which ``fn`` must not call). ``seed``: more cases, see the module."""
    _run("check_forward", fn, seed, _ref_forward, what="k = 1 to 25 patches, p = 1 to 9")


def check_loss(fn: Callable, *, seed: int | None = None) -> None:
    """Check ``fn(w, w_star, Z)`` = ℓ̂(w) = ½ mean_n (f(w, Z_n) − f(w*, Z_n))², a number, on the sample ``Z`` (n, k, p).
    Used in chapters/gd_gaussian.md (the loss of the introduction) and in the example of chapters/instructors.md.
    Reference: :func:`filterlib.loss` (which ``fn`` must not call; ``fl.forward`` is
    fine). ``seed``: more cases, see the module."""
    _run("check_loss", fn, seed, _ref_loss, what="k = 1 to 9 patches, p = 1 to 5, w = w* included")


def check_population_gradient(fn: Callable, *, seed: int | None = None) -> None:
    """Check ``fn(w, w_star, Z)`` = A_w w − A_{w,w*} w* for one patch (k = 1): the gradient of the loss on the
    sample ``Z`` (n, 1, p), with A_{w,w*} = mean ZZᵀ1{wᵀZ ≥ 0, w*ᵀZ ≥ 0}, A_{w,−w*} = mean ZZᵀ1{wᵀZ ≥ 0, w*ᵀZ < 0}
    and A_w = A_{w,w*} + A_{w,−w*}. Used in chapters/one_neuron.md (the population gradient, Theorem 3.1).
    Reference: :func:`filterlib.gradient`; ``fn`` must not call it nor :func:`filterlib.theory.A_matrices`.
    ``seed``: more cases, see the module."""
    _run("check_population_gradient", fn, seed, _ref_gradient,
         what="p = 1 to 5, n = 1 to 500, w = w* and w = −w*/2 included")


def check_conv_gradient(fn: Callable, *, seed: int | None = None) -> None:
    """Check ``fn(w, w_star, Z)`` = E[Z_w Z_wᵀ] w − E[Z_w Z_w*ᵀ] w* on the sample ``Z`` (n, k, p), with
    Z_v = (1/k) Σ_i Z_i 1{vᵀZ_i ≥ 0} and E the mean over the n inputs. Used in chapters/conv_model.md (the
    gradient of the convolutional model, Theorem 4.1's proof). Reference: :func:`filterlib.gradient`; ``fn`` must
    not call it nor :func:`filterlib.theory.conv_moments` / :func:`~filterlib.theory.four_region_gradient`.
    ``seed``: more cases, see the module."""
    _run("check_conv_gradient", fn, seed, _ref_gradient,
         what="k = 1 to 8 patches, p = 1 to 9, w = w* and w = −w*/2 included")


def check_gd_step(fn: Callable, *, seed: int | None = None) -> None:
    """Check ``fn(w, w_star, Z, eta)`` = w − η ∇ℓ̂(w): one gradient-descent step on the sample ``Z`` (n, k, p) with
    ℓ̂(w) = ½ mean_n (f(w, Z_n) − f(w*, Z_n))², so ∇ℓ̂(w) = mean_n (f(w, Z_n) − f(w*, Z_n)) Z_{w,n} with
    Z_{w,n} = (1/k) Σ_i Z_{n,i} 1{wᵀZ_{n,i} ≥ 0}. Used in chapters/rate.md (Theorem 3.2). Reference: one step of
    :func:`filterlib.gradient_descent`; ``fn`` must not call :func:`filterlib.gradient` (``fl.forward`` is fine).
    ``seed``: more cases, see the module."""
    _run("check_gd_step", fn, seed, _ref_gd_step, what="k = 1 to 9 patches, p = 1 to 5, several steps η")


def check_gamma(fn: Callable, *, seed: int | None = None) -> None:
    """Check ``fn(Z, w_star, W)`` = min over the rows w of ``W`` (m, p) of λ_min(A_{w,w*}): the estimate of γ(φ) of
    Definition 3.1 when the rows of W are the filters at angle φ from w* (``theory.directions_at_angle``), on a
    sample ``Z`` (n, 1, p). Returns a number. Used in chapters/smoothness.md (Definition 3.1). Reference: filterlib's
    A-matrices and eigenvalues (as in :func:`filterlib.theory.gamma`, which ``fn`` must not call;
    :func:`~filterlib.theory.A_matrices` is fine). ``seed``: more cases, see the module."""
    _run("check_gamma", fn, seed, _ref_gamma, rtol=1e-7, atol=1e-10,
         what="p = 2 to 6, 1 to 32 filters, Gaussian and cube laws")


def check_rho(fn: Callable, *, seed: int | None = None) -> None:
    """Check ``fn(Z)`` = ρ = the largest angle θ(Z_i, Z_avg) in radians, over every input and patch of the sample
    ``Z`` (n, k, p), with Z_avg = (1/k) Σ_i Z_i the input's patch average. Returns a number. Used in
    chapters/closeness.md (Theorem 4.3). Reference: :func:`filterlib.theory.rho` (which ``fn`` must not call).
    Angles may differ by 1e-6 rad (``arccos`` of a cosine a rounding error above 1 gives NaN: clamp it).
    ``seed``: more cases, see the module."""
    _run("check_rho", fn, seed, _ref_rho, rtol=1e-6, atol=1e-6, what="k = 1 to 25, p = 1 to 9, equal patches included")


def _sgd_one(name, fn, case, index, total, seed) -> None:
    """One case of check_sgd_step: two calls, then the expected step, then NaN, repeatability and the comparison."""
    first = _call(name, fn, case, index, total, seed)
    again = _call(name, fn, case, index, total, seed)
    expected = _ref_sgd_step(**{key: cs.clone(value) for key, value in case.args.items()})
    fail = _failing(name, index, total, case, seed)
    first_t = rep.as_tensor(first, tuple(expected.shape), fail)
    again_t = rep.as_tensor(again, tuple(expected.shape), fail)
    if not torch.equal(first_t, again_t):
        raise fail(["  two calls with equally seeded generators gave different steps: draw the minibatch from "
                    "`generator` (torch.randint(n, (batch_size,), generator=generator)), not from torch's global RNG"])
    _compare(first_t, expected, 1e-7, 1e-9, fail)


def check_sgd_step(fn: Callable, *, seed: int | None = None) -> None:
    """Check ``fn(w, w_star, Z, eta, batch_size, generator)``: one minibatch SGD step. Draw the minibatch with
    replacement as ``idx = torch.randint(n, (batch_size,), generator=generator)``, then return
    w − η ∇ℓ̂_B(w), the gradient of the loss on the examples ``Z[idx]`` (``fl.gradient`` is fine here).
    Used in chapters/sgd.md (Theorem 4.2). Reference: one step of :func:`filterlib.sgd`, which ``fn`` must not call.
    ``seed``: more cases, see the module."""
    name = "check_sgd_step"
    _callable(name, fn)
    cases = cs.cases(name, seed)
    for index, case in enumerate(cases, 1):
        _sgd_one(name, fn, case, index, len(cases), seed)
    rep.passed(name, len(cases), "batch sizes 1 to 32, k = 1 to 9, batches larger than n included", _drawn(cases))


def _ks_uniform(s: torch.Tensor) -> float:
    """Kolmogorov–Smirnov distance between the sample s (values in [0, 1]) and U[0, 1]."""
    s, _ = torch.sort(s.reshape(-1).to(F64))
    m = s.numel()
    i = torch.arange(1, m + 1, dtype=F64)
    return float(torch.maximum(i / m - s, s - (i - 1) / m).max())


def _ball_directions(u, p, m, index, limit, fail) -> None:
    """Uniform directions: the law of (u·e)², Beta(1/2, (p − 1)/2), along fixed directions e (p ≥ 2)."""
    g = cs.gen(1000 + index)
    directions = [("the first axis", torch.eye(p, dtype=F64)[0]),
                  ("the diagonal (1, …, 1)/√p", torch.ones(p, dtype=F64) / math.sqrt(p)),
                  ("a random direction", cs.randn(g, p))]
    for label, e in directions:
        e = e / e.norm()
        t = ((u @ e) ** 2).clamp(0, 1)                                 # (u·e)² ~ Beta(1/2, (p − 1)/2)
        d = _ks_uniform(_initialization.betainc(0.5, (p - 1) / 2, t))
        if d > limit:
            raise fail([
                f"  the directions x/‖x‖ are not uniform on the sphere: along {label} the law of (u·e)² is off "
                f"(Kolmogorov–Smirnov distance {d:.4f} > {limit:.4f})",
                "  (normalise a standard Gaussian vector for a uniform direction; a normalised cube point is not)"])


def _ball_one(name, fn, case, index, total, seed) -> None:
    """One case of check_ball_sampler: repeatability, then every point in the ball, the radius law, the directions."""
    m, p, radius = case.args["m"], case.args["p"], case.args["radius"]
    fail = _failing(name, index, total, case, seed)
    x = rep.as_tensor(_call(name, fn, case, index, total, seed), (m, p), fail)
    y = rep.as_tensor(_call(name, fn, case, index, total, seed), (m, p), fail)
    if not torch.equal(x, y):
        raise fail(["  two calls with equally seeded generators gave different points: draw every random number "
                    "from `generator` (e.g. torch.rand(..., generator=generator)), not from torch's global RNG"])
    x = x.to(F64)
    norms = x.norm(dim=1)
    j = int(norms.argmax())
    if float(norms[j]) > radius * (1 + 1e-6):
        raise fail([f"  point {j} = {rep.show(x[j])} has norm {rep.fmt(float(norms[j]))} > radius "
                    f"{rep.fmt(radius)}"])
    limit = case.extra["ks"] / math.sqrt(m)
    d = _ks_uniform((norms / radius) ** p)
    if d > limit:
        inside = float((norms <= radius / 2).to(F64).mean())
        raise fail([f"  the radii do not follow P(‖x‖ ≤ r) = (r/radius)^p: Kolmogorov–Smirnov distance {d:.4f} > "
                    f"{limit:.4f}",
                    f"  fraction of points within radius/2: {inside:.4f}, expected 2^-p = {0.5 ** p:.4f}",
                    "  (a uniform point in the ball has ‖x‖ = radius·U^(1/p) with U uniform on [0, 1])"])
    nonzero = norms > 0
    u = x[nonzero] / norms[nonzero, None]
    if p == 1:
        frac = float((u[:, 0] > 0).to(F64).mean())
        if abs(frac - 0.5) > case.extra["sign"] / math.sqrt(m):
            raise fail([f"  in one dimension half of the points should be positive, got a fraction {frac:.4f}"])
        return
    _ball_directions(u, p, m, index, limit, fail)


def check_ball_sampler(fn: Callable, *, seed: int | None = None) -> None:
    """Check ``fn(m, p, radius, generator)``: m points uniform in the p-dimensional ball of the given radius
    (centred at 0), shape (m, p), drawn from ``generator`` only. Statistical check with fixed seeds: every point in
    the ball, the radius law P(‖x‖ ≤ r) = (r/radius)^p and uniform directions (the law of (u·e)² along several
    fixed e), by Kolmogorov–Smirnov distances against 1.95/√m (a 0.1 % test per statistic; the cases drawn from
    ``seed`` use m = 40000 and 2.6/√m, a 3·10⁻⁶ test, as they are more). Used in chapters/init.md (Theorem 4.4).
    Reference: the laws that :func:`filterlib.initialization.ball` samples (which ``fn`` must not call)."""
    name = "check_ball_sampler"
    _callable(name, fn)
    cases = cs.cases(name, seed)
    for index, case in enumerate(cases, 1):
        _ball_one(name, fn, case, index, len(cases), seed)
    rep.passed(name, len(cases), "p = 1 to 25: in the ball, radius law (r/R)^p, uniform directions", _drawn(cases))
