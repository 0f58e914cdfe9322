"""The result types of :func:`filterlib.diagnose` and their rendering (chapters/diagnose.md).

:class:`Estimate` (a constant with its error bar), :class:`Condition` (a theorem's condition or a claimed
inequality, with the two numbers compared), :class:`Guarantee` (what one theorem promises), :class:`Run` (gradient
descent next to the theorem's bound) and :class:`Diagnosis`, which holds them all and renders them as a readable
table (:meth:`Diagnosis.table`), as plain JSON-ready values (:meth:`Diagnosis.to_dict`, :meth:`Diagnosis.to_json`)
or, in a notebook, as an HTML report with tables and a figure (``_repr_html_``, :mod:`~filterlib.diagnosis.report`).
"""
from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass, field, fields, is_dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Estimate:
    """A Monte-Carlo estimate: ``value`` (None when it cannot be computed; ``reason`` says why), its error bar
    ``se`` (None where the estimator offers none), and an optional caveat in ``reason``. Part of the result of
    :func:`filterlib.diagnose` (chapters/diagnose.md)."""

    value: float | None
    se: float | None = None
    reason: str | None = None

    @classmethod
    def of(cls, value, se=None, reason=None) -> "Estimate":
        """An estimate from numbers or 0-d tensors: a non-finite value becomes None (with ``reason``, or "the
        estimate is not finite"), a non-finite error bar None. Used by :func:`filterlib.diagnose`
        (chapters/diagnose.md)."""
        val = None if value is None else float(value)
        err = None if se is None else float(se)
        if val is not None and not math.isfinite(val):
            return cls(None, None, reason or "the estimate is not finite")
        if err is not None and not math.isfinite(err):
            err = None
        return cls(val, err, reason)


@dataclass(frozen=True)
class Condition:
    """A theorem's condition or a claimed inequality, with the two numbers compared: ``holds`` is ``lhs <op> rhs``
    as written in ``statement`` (None when a number is missing; ``reason`` says why). Part of the result of
    :func:`filterlib.diagnose` (chapters/diagnose.md)."""

    statement: str
    holds: bool | None
    lhs: float | None
    rhs: float | None
    reason: str | None = None


@dataclass(frozen=True)
class Guarantee:
    """What one theorem promises on this data (chapters/diagnose.md).

    ``step_cap``: the largest constant step it allows (min of its cap over φ ∈ [0, φ₀]); ``contraction``: its bound
    on ‖w_{t+1} − w*‖²/‖w_t − w*‖² at that step (worst case over φ ≤ φ₀); ``iterations``: steps that bound needs from
    relative distance sin φ₀ to ε; ``iterations_O``: the theorem's O(·) iteration count *without* its absolute
    constant. All None, with a ``reason``, when the condition fails.
    """

    theorem: str
    model: str
    condition: Condition
    step_cap: float | None
    contraction: float | None
    iterations: float | None
    iterations_O: float | None
    reason: str | None = None


@dataclass(frozen=True)
class Run:
    """Gradient descent on the sample from ‖w₀ − w*‖ = sin φ₀ ‖w*‖, next to the theorem's prediction
    (chapters/diagnose.md).

    ``measured_contraction`` is exp(slope) of a least-squares fit of log ‖w_t − w*‖² against t (the mean squared
    contraction per step); ``worst_step`` the largest single-step ratio ‖w_{t+1} − w*‖²/‖w_t − w*‖²; ``bound`` the
    theorem's contraction at ``eta`` (``bound_source`` says which, or why there is none); ``iterations_measured``
    the first step with ‖w − w*‖ ≤ ε‖w*‖ (or, if ``extrapolated``, the fitted rate's prediction of it).
    """

    model: str
    eta: float | None
    eta_source: str
    steps: int
    measured_contraction: float | None
    worst_step: float | None
    bound: float | None
    bound_source: str
    bound_holds: bool | None
    final_relative_distance: float | None
    iterations_measured: float | None
    extrapolated: bool
    reason: str | None = None


@dataclass(frozen=True)
class Diagnosis:
    """The result of :func:`filterlib.diagnose` (chapters/diagnose.md): ``setup`` (what was measured), the ``patch``
    (one neuron) and ``conv`` constants as :class:`Estimate`, Theorem 4.3's ``closeness`` conditions
    (:class:`Condition`), the two :class:`Guarantee`, the two gradient-descent :class:`Run`, and a one-paragraph
    ``verdict`` (led by the measured ``causes`` when γ is 0 or tiny: dicts {"cause", "evidence", "fix", "gamma"});
    ``activation`` holds ``teacher_active_fraction`` and ``start_active_fraction`` (of all patches of the chosen
    images), the same per image (``..._image_fraction``: at least one active patch) and ``warnings`` for a dead
    (< 1 %) or linear (> 99 %) teacher or start; ``setup["input"]`` says how the images were read. A notebook shows it as an HTML report (``_repr_html_``), :meth:`table` prints it as text,
    :meth:`to_dict` gives plain floats, strings, bools and None (JSON-serialisable, no NaN). ``details`` (left out of :meth:`to_dict`) holds the tensors ``w_star``, ``w0`` and
    ``patch_sample`` (the (n_patches, 1, p) single patches of the one-neuron view) and the two
    :class:`~filterlib.train.History` objects ``history_patch`` and ``history_conv`` (None where no run was made),
    for plots and follow-up checks."""

    setup: dict
    patch: dict
    conv: dict
    closeness: dict
    theorem_3_2: Guarantee
    theorem_4_1: Guarantee
    run_patch: Run
    run_conv: Run
    verdict: str
    details: dict = field(default_factory=dict, repr=False, compare=False)
    activation: dict = field(default_factory=dict)
    causes: list = field(default_factory=list)

    def to_dict(self) -> dict:
        """Nested dict of floats, ints, strings, bools and None (no tensors, no NaN or infinity), as printed by
        ``python -m filterlib diagnose --json`` (chapters/diagnose.md)."""
        out = {f.name: _plain(getattr(self, f.name)) for f in fields(self) if f.name != "details"}
        json.dumps(out, allow_nan=False)                               # fails loudly if anything slipped through
        return out

    def to_json(self, **kw) -> str:
        """:meth:`to_dict` as a JSON string (``json.dumps`` keywords pass through; NaN is never written). Used by
        ``python -m filterlib diagnose --json`` (chapters/diagnose.md)."""
        return json.dumps(self.to_dict(), allow_nan=False, **kw)

    def table(self) -> str:
        """A readable multi-line summary: constants with error bars, conditions, steps, predicted vs measured, as
        printed in chapters/diagnose.md."""
        lines = _setup_rows(self.setup) + _input_rows(self.setup) + _activation_rows(self.activation) + [""]
        lines += _constant_rows(self) + [""]
        for g in (self.theorem_3_2, self.theorem_4_1):
            lines += _guarantee_rows(g) + [""]
        lines.append("Gradient descent on the sample (contraction = per-step factor of ‖w_t − w*‖², fitted)")
        for r in (self.run_patch, self.run_conv):
            lines += _run_rows(r)
        lines.append("")
        lines.append("Verdict: " + self.verdict)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        return self.table()

    def _repr_html_(self) -> str:
        """The report a notebook shows when a Diagnosis is a cell's last expression: the verdict, a table of the
        paper's conditions (two sides, holds/fails), a table of guaranteed vs measured rates and one figure
        (chapters/diagnose.md; :func:`filterlib.diagnosis.report.html`)."""
        from .report import html

        return html(self)


# --------------------------------------------------------------------------------------------------------------
# The table, block by block


_PATCH_NAMES = {"gamma": "γ(φ₀)", "L": "L(φ₀)", "beta": "β"}
_CONV_NAMES = {"gamma": "γ(φ₀)", "L": "L(φ₀)", "beta": "β", "L_cross": "L_cross", "rho": "ρ (rad)",
               "mu": "μ", "gamma_avg": "γ_avg(φ₀)"}


def _setup_rows(s: dict) -> list[str]:
    return [f"Diagnosis: {s['n_images']} images of {s['height']}×{s['width']}, filter {s['filter_size']}×"
            f"{s['filter_size']} (p = {s['p']}), stride {s['stride']}, k = {s['k']} patches per image; "
            f"teacher {s['teacher']} (‖w*‖ = {s['teacher_norm']:.3g}); φ₀ = {s['phi0']:.4f} rad "
            f"(start at ‖w₀ − w*‖ = {s['start']:.3g}‖w*‖), ε = {s['eps']:g}"]


def _input_rows(s: dict) -> list[str]:
    """How the images were read and their pixel scale (chapters/diagnose.md)."""
    i = s.get("input")
    if not i:
        return []
    from ..data.files import describe

    lines = [f"Input: {describe(i)}"]
    px = i.get("pixels") or {}
    if px:
        lines.append(f"Pixels{' after centring each image' if i.get('center') else ''}: min {px['min']:.4g}, max "
                     f"{px['max']:.4g}, mean {px['mean']:.4g}, std {px['std']:.4g}"
                     + ("" if i.get("center") else " (not centred; --center subtracts each image's mean)"))
    crop = s.get("crop")
    if crop:
        lines.append(f"Note: {crop['note']}")
    return lines


def _activation_rows(a: dict) -> list[str]:
    from .causes import activation_text

    if not a:
        return []
    lines = [f"Activation (wᵀz > 0, all {a['n_patches_counted']} patches): " + activation_text(a)]
    lines += [f"WARNING: {w}" for w in a.get("warnings", [])]
    return lines


def _constant_rows(d: Diagnosis) -> list[str]:
    s = d.setup
    lines = [f"One neuron on single patches ({s['n_patches']} patches): Definition 3.1, Assumption 3.2"]
    lines += _estimate_rows(d.patch, _PATCH_NAMES)
    lines.append(f"  smoothness γ(φ₀)/L(φ₀) = {_fmt(_ratio(d.patch['gamma'], d.patch['L']))}")
    lines.append("")
    lines.append(f"Convolutional model ({s['n_images']} images × {s['k']} patches): Assumptions 4.1, 4.2, "
                 f"Theorem 4.3")
    lines += _estimate_rows(d.conv, _CONV_NAMES)
    for cond in d.closeness.values():
        lines.append(_condition_row(cond, "Theorem 4.3 claims"))
    return lines


def _guarantee_rows(g: Guarantee) -> list[str]:
    lines = [f"{g.theorem} ({g.model})", _condition_row(g.condition, "condition")]
    if g.step_cap is None:
        lines.append(f"  no step: {g.reason}")
    else:
        lines.append(f"  largest step η = {_fmt(g.step_cap)}; bound on ‖u_(t+1)‖²/‖u_t‖² = "
                     f"{_fmt_c(g.contraction)}; iterations to ε at that bound = {_fmt(g.iterations)}")
        lines.append(f"  O-term (L+…)²/(γ−…)² log(1/ε), no constant = {_fmt(g.iterations_O)}")
    return lines


def _run_rows(r: Run) -> list[str]:
    lines = [f"  {r.model}: η = {_fmt(r.eta)} ({r.eta_source}), {r.steps} steps"]
    if r.measured_contraction is None:
        return lines + [f"    no rate: {r.reason}"]
    if r.reason:
        lines.append(f"    note: {r.reason}")
    lines.append(f"    measured contraction {_fmt_c(r.measured_contraction)} (worst step "
                 f"{_fmt_c(r.worst_step)}) vs bound {_fmt_c(r.bound)} [{r.bound_source}]"
                 + ("" if r.bound_holds is None else f"; bound held at every step: {r.bound_holds}"))
    how = "" if r.iterations_measured is None else (" (extrapolated)" if r.extrapolated else " (measured)")
    lines.append(f"    iterations to ε: {_fmt(r.iterations_measured)}{how}; final ‖w − w*‖/‖w*‖ = "
                 f"{_fmt(r.final_relative_distance)}")
    return lines


def _fmt(x, digits: int = 4) -> str:
    if x is None:
        return "—"
    if isinstance(x, bool):
        return str(x)
    x = float(x)
    if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e5):
        return f"{x:.{max(digits - 1, 1)}e}"
    return f"{x:.{digits}g}" if digits > 4 else f"{x:.4g}"


def _fmt_c(x) -> str:
    """A contraction factor: close to 1 it is shown as 1 − δ so that the digits that matter are visible."""
    if x is None:
        return "—"
    x = float(x)
    if 0.99 < x < 1:
        return f"1 − {1 - x:.3g}"
    return f"{x:.4f}" if x < 1e4 else f"{x:.3e}"                         # a run that grew by 1e20 per step


def _ratio(a: Estimate, b: Estimate):
    if a.value is None or b.value is None or b.value == 0:
        return None
    return a.value / b.value


def _estimate_rows(ests: dict, names: dict) -> list[str]:
    rows = []
    for key, label in names.items():
        e = ests[key]
        se = "" if e.se is None else f" ± {_fmt(e.se)}"
        note = f"   ({e.reason})" if e.reason else ""
        rows.append(f"  {label:11s} = {_fmt(e.value)}{se}{note}")
    return rows


def _condition_row(c: Condition, label: str) -> str:
    if c.holds is None:
        return f"  {label}: {c.statement}: unknown ({c.reason})"
    extra = f" ({c.reason})" if c.reason else ""
    return f"  {label}: {c.statement}: {_fmt(c.lhs)} vs {_fmt(c.rhs)} → {'holds' if c.holds else 'FAILS'}{extra}"


def _plain(x):
    """Recursively turn dataclasses, dicts, tensors and numpy scalars into JSON-ready values (NaN/inf → None)."""
    if is_dataclass(x) and not isinstance(x, type):
        return {f.name: _plain(getattr(x, f.name)) for f in fields(x) if not f.name.startswith("_")}
    if isinstance(x, dict):
        return {str(k): _plain(val) for k, val in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(val) for val in x]
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().tolist()
        return _plain(x)
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, numbers.Integral):
        return int(x)
    if isinstance(x, numbers.Real):
        x = float(x)
        return x if math.isfinite(x) else None
    return x
