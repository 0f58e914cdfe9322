"""What the theorems promise on the measured constants (chapters/diagnose.md).

* Theorem 3.2 (one neuron) and Theorem 4.1 (the convolutional model): the condition, the largest step (the min of the
  theorem's step cap over the φ grid of [0, φ₀]), the contraction bound at that step, the iterations that bound
  needs to reach ε, and the theorem's O(·) iteration count without its constant (:func:`theorem_3_2`,
  :func:`theorem_4_1`, :func:`iterations_to`).
* The bound a gradient-descent run at a given step is compared with (:func:`run_bound_3_2`, :func:`run_bound_4_1`,
  :func:`heuristic_cap`), and the smoothness-only step used where no theorem gives one (:func:`smoothness_step`).
* Theorem 4.3's closeness inequalities (:func:`closeness_conditions`) and the one-paragraph verdict
  (:func:`verdict`).

The formulas themselves (step caps, contraction factors, O-terms) are those of :mod:`filterlib.theory`.
"""
from __future__ import annotations

import math

from .. import theory
from .results import Condition, Guarantee
from .steps import iterations_to

_TOLERANCE = 1e-12              # a step "at the cap" may exceed it by round-off


def theorem_3_2(gam: list, L: list, beta: float, start: float, eps: float) -> Guarantee:
    """Theorem 3.2's step, contraction and iterations for one neuron on single patches, from γ(φ), L(φ) on the cap
    grid (lists, last entry at φ₀) and β; ``start`` = sin φ₀ and ``eps`` are relative distances. Used by
    :func:`filterlib.diagnose` (chapters/diagnose.md)."""
    theorem, model = "Theorem 3.2", "one neuron trained on single patches (k = 1)"
    cond = Condition("γ(φ) > 0 for φ ≤ φ₀ (Assumption: positive-definite joint moment)", None, None, None)
    if any(x is None for x in (*gam, *L, beta)):
        return Guarantee(theorem, model, Condition(cond.statement, None, None, None, "an estimate is missing"),
                         None, None, None, None, "an estimate is missing")
    gmin = min(gam)
    cond = Condition("min over φ ≤ φ₀ of γ(φ) > 0", gmin > 0, gmin, 0.0)
    if not gmin > 0:
        return Guarantee(theorem, model, cond, None, None, None, None,
                         f"γ(φ) = {gmin:.3g} ≤ 0 at some φ ≤ φ₀: the joint moment is singular and Theorem 3.2 gives no "
                         f"positive step")
    cap = min(theory.step_cap(g, l, beta) for g, l in zip(gam, L))
    contraction = theory.contraction_bound(cap, gmin)
    iters = iterations_to(contraction, start, eps, shrink=cap * gmin / 2)
    iters_o = theory.iterations_bound(gam[-1], L[-1], beta, eps)
    return Guarantee(theorem, model, cond, cap, contraction, iters, iters_o)


def theorem_4_1(gam: list, L: list, beta: float, L_cross: float, start: float, eps: float, k: int) -> Guarantee:
    """Theorem 4.1's condition γ(φ₀) > 6 L_cross, step, contraction and iterations for the convolutional model with
    k patches per image; arguments as for :func:`theorem_3_2`. Used by :func:`filterlib.diagnose`
    (chapters/diagnose.md)."""
    theorem, model = "Theorem 4.1", f"convolutional model, k = {k} patches per image, average pooling"
    statement = "γ(φ₀) > 6·L_cross"
    if any(x is None for x in (*gam, *L, beta, L_cross)):
        return Guarantee(theorem, model, Condition(statement, None, None, None, "an estimate is missing"),
                         None, None, None, None, "an estimate is missing")
    cond = Condition(statement, gam[-1] > 6 * L_cross, gam[-1], 6 * L_cross)
    if not cond.holds:
        return Guarantee(theorem, model, cond, None, None, None, None,
                         f"Theorem 4.1's condition fails (γ(φ₀) = {gam[-1]:.3g} ≤ 6·L_cross = {6 * L_cross:.3g}): "
                         f"the theorem gives no step, no rate and no iteration count")
    margins = [g - 6 * L_cross for g in gam]
    if min(margins) <= 0:
        return Guarantee(theorem, model, Condition("γ(φ) > 6·L_cross for all φ ≤ φ₀", False, min(gam), 6 * L_cross),
                         None, None, None, None, "γ(φ) ≤ 6·L_cross at some φ < φ₀ on the grid: the cap's minimum "
                         "over [0, φ₀] is not positive, so the theorem gives no step")
    cap = min(theory.conv_step_cap(g, l, beta, L_cross) for g, l in zip(gam, L))
    contraction = theory.conv_contraction_bound(cap, min(gam), L_cross)
    iters = iterations_to(contraction, start, eps, shrink=cap * (min(gam) - 6 * L_cross) / 2)
    iters_o = theory.conv_iterations_bound(gam[-1], L[-1], beta, L_cross, eps)
    return Guarantee(theorem, model, cond, cap, contraction, iters, iters_o)


def smoothness_step(L: list, beta: float):
    """The step 1/(max L + 4β) that no theorem covers, used where a theorem gives none (None if not positive and
    finite). Used by :func:`filterlib.diagnose` (chapters/diagnose.md)."""
    denom = max(L) + 4 * beta
    return 1 / denom if denom > 0 and math.isfinite(denom) else None


def run_bound_3_2(eta, guarantee: Guarantee, gam: list) -> tuple:
    """(Theorem 3.2's contraction 1 − η·min γ/2 at the step ``eta``, or None; its source, or why there is none) for
    the one-neuron run. Used by :func:`filterlib.diagnose` (chapters/diagnose.md)."""
    if eta is None:
        return None, "none: no step"
    if guarantee.step_cap is None:
        return None, f"none: {guarantee.reason}"
    if eta > guarantee.step_cap * (1 + _TOLERANCE):
        return None, f"none: η exceeds Theorem 3.2's cap {guarantee.step_cap:.3g}"
    return theory.contraction_bound(eta, min(gam)), "Theorem 3.2: 1 − η·min γ/2"


def heuristic_cap(gam: list, L: list, beta: float):
    """Theorem 3.2's step cap evaluated on the convolutional constants (min over the grid), or None when some γ ≤ 0:
    below it a given step gets Theorem 3.2's bound as a labelled heuristic. Used by :func:`filterlib.diagnose`
    (chapters/diagnose.md)."""
    if min(gam) > 0:
        return min(theory.step_cap(g, l, beta) for g, l in zip(gam, L))
    return None


def run_bound_4_1(eta, guarantee: Guarantee, gam: list, L_cross: float, heuristic=None) -> tuple:
    """(Theorem 4.1's contraction 1 − η(min γ − 6L_cross)/2 at the step ``eta``, or the heuristic bound below
    ``heuristic`` when the theorem fails, or None; its source, or why there is none) for the convolutional run.
    Used by :func:`filterlib.diagnose` (chapters/diagnose.md)."""
    if eta is None:
        return None, "none: no step"
    if guarantee.step_cap is None:
        if heuristic is not None and heuristic > 0 and eta <= heuristic * (1 + _TOLERANCE):
            return (theory.contraction_bound(eta, min(gam)),
                    "heuristic, no theorem: Theorem 3.2's 1 − η·min γ/2 with the conv constants")
        return None, "none: Theorem 4.1's condition fails"
    if eta > guarantee.step_cap * (1 + _TOLERANCE):
        return None, f"none: η exceeds Theorem 4.1's cap {guarantee.step_cap:.3g}"
    return theory.conv_contraction_bound(eta, min(gam), L_cross), "Theorem 4.1: 1 − η(min γ − 6L_cross)/2"


def closeness_conditions(conv: dict) -> dict:
    """Theorem 4.3's two claims on the measured convolutional constants (a dict of :class:`~filterlib.diagnosis.
    results.Estimate`): γ(φ₀) ≥ γ_avg(φ₀) − 4(1 − cos ρ) and L_cross ≤ 3μ, as :class:`Condition`. Used by
    :func:`filterlib.diagnose` (chapters/diagnose.md)."""
    note = "Theorem 4.3 assumes unit-norm patches; these patches are not normalised"
    ga, rho_, gam = conv["gamma_avg"].value, conv["rho"].value, conv["gamma"].value
    if None in (ga, rho_, gam):
        lower = Condition("γ(φ₀) ≥ γ_avg(φ₀) − 4(1 − cos ρ)", None, gam, None, "an estimate is missing")
    else:
        bound = ga - 4 * (1 - math.cos(rho_))
        lower = Condition("γ(φ₀) ≥ γ_avg(φ₀) − 4(1 − cos ρ)", gam >= bound, gam, bound, note)
    lx, mu_ = conv["L_cross"].value, conv["mu"].value
    if None in (lx, mu_):
        upper = Condition("L_cross ≤ 3μ", None, lx, None, "an estimate is missing")
    else:
        upper = Condition("L_cross ≤ 3μ", lx <= 3 * mu_, lx, 3 * mu_, note)
    return {"gamma_lower_bound": lower, "L_cross_upper_bound": upper}


def verdict(patch: dict, th32: Guarantee, th41: Guarantee, run, k: int, phi0: float, causes=()) -> str:
    """The one-paragraph verdict: first, when γ is 0 or tiny, its measured causes and the change that would test
    each (``causes``, from :func:`filterlib.diagnosis.causes.causes`); then the patches' smoothness against N(0, I)
    noise, what Theorems 3.2 and 4.1 promise, and what gradient descent on the convolutional model (``run``) did.
    Used by :func:`filterlib.diagnose` (chapters/diagnose.md)."""
    lead = ""
    if causes:
        which = causes[0].get("gamma", "")
        named = "; ".join(f"{c['cause']}: {c['evidence']} (to test it: {c['fix']})" for c in causes)
        lead = f"γ(φ₀) is 0 or tiny ({which}). Likely cause{'s' if len(causes) > 1 else ''}: {named}. "
    parts = []
    g, L = patch["gamma"].value, patch["L"].value
    if g is not None and L:
        ref = (math.pi - phi0 - math.sin(phi0)) / (math.pi - phi0 + math.sin(phi0))     # N(0, I) patches
        parts.append(f"single patches have smoothness γ/L = {g / L:.3g} at φ₀ (N(0, I) noise has {ref:.2f}; the "
                     f"smaller, the slower)")
    if th32.step_cap is not None:
        parts.append(f"Theorem 3.2 guarantees one neuron a linear rate (at most {_count(th32.iterations)} steps to ε "
                     f"at η = {th32.step_cap:.3g})")
    else:
        parts.append(f"Theorem 3.2 gives no guarantee ({th32.reason})")
    if k > 1:
        if th41.step_cap is not None:
            parts.append(f"Theorem 4.1 applies to the convolutional filter (at most {_count(th41.iterations)} steps "
                         f"to ε)")
        else:
            parts.append("Theorem 4.1 does not apply to the convolutional filter: " + (th41.reason or ""))
    parts += _run_verdict(run)
    text = "; ".join(parts) + "."
    return lead + text[0].upper() + text[1:]


def _count(x) -> str:
    """A step count for the verdict (3 significant digits), or words where there is none."""
    return "an unknown number of" if x is None else f"{x:.3g}"


def _run_verdict(run) -> list[str]:
    if run.measured_contraction is None and (run.reason or "").startswith("gradient descent diverged"):
        return [f"gradient descent on the convolutional model diverged at η = {run.eta:.3g}"]
    if run.measured_contraction is not None and run.measured_contraction >= 1:
        return [f"gradient descent on the convolutional model did not converge at η = {run.eta:.3g} "
                f"(‖w − w*‖² changed by a factor {run.measured_contraction:.6g} per step)"]
    if run.measured_contraction is not None:
        how = "extrapolated" if run.extrapolated else "measured"
        rate = (f"gradient descent on the convolutional model contracted ‖w − w*‖² by "
                f"{run.measured_contraction:.6g} per step")
        if run.iterations_measured is not None:
            rate += f" ({run.iterations_measured:.3g} steps to ε, {how})"
        return [rate]
    return []
