"""Gradient descent on the diagnosed sample and the fit of its rate (chapters/diagnose.md).

:func:`run` trains from w₀ with :func:`filterlib.gradient_descent` at a constant step and returns a
:class:`~filterlib.diagnosis.results.Run`: the measured contraction of ‖w_t − w*‖² per step (:func:`fit_rate`, a
least-squares line through log ‖w_t − w*‖² before round-off level), the worst single step, whether the theorem's
bound held at every step, and the iterations to ε (measured, or extrapolated from the fitted rate).
"""
from __future__ import annotations

import math

import numpy as np

from ..train import gradient_descent
from .results import Run

_FLOOR = 1e-10                  # relative distances below this are round-off, not convergence, in the rate fit


def fit_rate(history, floor: float = _FLOOR):
    """(slope of log ‖w_t − w*‖² against t, largest single-step ratio ‖w_{t+1} − w*‖²/‖w_t − w*‖²) over the recorded
    steps before the relative distance first falls to ``floor``; None when fewer than 3 such steps remain. Used by
    :func:`filterlib.diagnose` (chapters/diagnose.md)."""
    rel = history.relative_distance
    below = np.nonzero(~(rel > floor))[0]
    last = int(below[0]) if below.size else len(rel)                 # points before round-off level
    if last < 3:
        return None
    t = history.step[:last].astype(float)
    log_d2 = 2 * np.log(history.distance[:last])                     # not log(d²): d² overflows from d ≈ 1e154
    slope = float(np.polyfit(t, log_d2, 1)[0])
    worst = _exp(float(np.max(np.diff(log_d2))))
    return slope, worst


def _exp(x: float) -> float:
    """exp(x), inf where it exceeds the largest float (math.exp raises there) and NaN for NaN."""
    return math.exp(x) if x < 709 else (math.inf if x == x else math.nan)


def run(Z, w_star, w0, eta, eta_source: str, steps: int, eps: float, start: float, bound, bound_source: str,
        model: str):
    """Gradient descent on Z from w0 at the step ``eta`` for ``steps`` steps: (:class:`Run` with the fitted
    contraction of ‖w_t − w*‖² per step next to ``bound``, the :class:`~filterlib.train.History` or None). Never
    raises for a missing step or a divergence: the Run says why. Used by :func:`filterlib.diagnose`
    (chapters/diagnose.md)."""
    if eta is None or not eta > 0:
        return Run(model, None, eta_source, steps, None, None, bound, bound_source, None, None, None, False,
                   "no positive step is available (pass eta= to choose one)"), None
    try:
        h = gradient_descent(w0, w_star, Z, eta=float(eta), steps=steps, record_every=1, progress=False)
    except FloatingPointError as exc:
        return Run(model, float(eta), eta_source, steps, None, None, bound, bound_source, None, None, None, False,
                   f"gradient descent diverged ({exc})"), None
    final = float(h.relative_distance[-1])
    fit = fit_rate(h)
    if fit is None:
        return Run(model, float(eta), eta_source, steps, None, None, bound, bound_source, None, final,
                   _steps_to(h, eps), False, "converged to round-off level within 2 steps: no rate to fit"), h
    slope, worst = fit
    measured = _exp(slope)
    if not (math.isfinite(measured) and math.isfinite(worst)):      # the distance ran off beyond any rate
        return Run(model, float(eta), eta_source, steps, None, None, bound, bound_source, None,
                   final if math.isfinite(final) else None, None, False, _diverged(h)), h
    holds = None if bound is None else bool(worst <= bound * (1 + 1e-9))
    reached = _steps_to(h, eps)
    extrapolated = False
    if reached is None and measured < 1:
        reached = float(math.ceil(2 * math.log(eps / start) / slope)) if eps < start else 0.0
        extrapolated = True
    reason = None
    if measured > 1:
        reason = "the distance grew: gradient descent diverges at this step (try a smaller eta)"
    elif reached is None:
        reason = "the distance did not shrink: no iteration count"
    return Run(model, float(eta), eta_source, steps, measured, worst, bound, bound_source, holds, final, reached,
               extrapolated, reason), h


def _diverged(h) -> str:
    """The reason of a run whose distance grew beyond a representable rate."""
    rel = h.relative_distance
    return (f"gradient descent diverged: ‖w − w*‖/‖w*‖ grew from {rel[0]:.3g} to {np.max(rel):.3g} within "
            f"{int(h.step[-1])} steps (try a smaller eta)")


def _steps_to(h, eps):
    s = float(h.steps_to(eps))
    return s if math.isfinite(s) else None
