"""Monte-Carlo estimates of the constants of the paper on a sample: γ, L (Definition 3.1), L_{−w*} and β
(Assumptions 3.2 and 4.1), the cross sum and L_cross (Assumption 4.2), and Theorem 4.3's ρ, μ and γ_avg.

* :func:`constants`: several constants from one pass over the sample per set of angles, with error bars; the
  single estimators below are this call for one constant.
* Part I, one neuron (a sample Z of shape (n, 1, p)): :func:`gamma`, :func:`L`, :func:`L_minus`, :func:`beta`.
* Part II, the convolutional filter (Z of shape (n, k, p), any k ≥ 1): :func:`conv_gamma`, :func:`conv_L`,
  :func:`conv_L_minus`, :func:`conv_beta`, :func:`cross_sum`, :func:`L_cross`; for k = 1 they equal the Part I
  estimators bit for bit (same directions, same moment kernel).
* Grids of angles: :func:`default_beta_grid`, :func:`default_cross_grid`.
* Theorem 4.3 (close patches): :func:`rho`, :func:`mu`, :func:`gamma_avg`, :func:`closeness_bounds`.

Estimator notes (read before quoting an estimate):

* **Finitely many directions.** γ(φ) is a minimum (L, L_{−w*} maxima) over *all* w at angle φ. For p = 2 there
  are exactly two such directions and both are used, so nothing is missed. For p > 2 the estimators use
  ``n_directions`` random directions (seeded by ``seed``); for a law that is not rotation invariant around w*
  they can miss the extreme direction, which biases γ *up* and L, L_{−w*}, β *down*.
* **Noise selection bias.** On a finite sample the minimum (maximum) over many near-optimal directions picks the
  direction whose noise is most negative (positive), which biases γ *down* and L, L_{−w*}, β *up* by up to about
  one or two per-direction standard errors. This is largest for rotation-invariant laws, where every direction
  is optimal. β's maximum over the φ grid of L_{−w*}(φ)/φ adds the same kind of bias, amplified at small φ.
* **Standard errors** (``return_se=True``) are error bars for the returned (plug-in) value, combining in
  quadrature (i) the batch-means standard error: the sample is split into ``n_batches`` (default 10) contiguous
  disjoint batches, the whole estimator (eigenvalues, min/max over the *same* directions and φ grid) is
  recomputed on each batch, se_bm = std(batch values)/√n_batches; (ii) an estimate of the selection bias: the
  value minus a ``n_batches``-fold cross-fitted estimate (direction and eigenvector chosen on the other batches,
  Rayleigh quotient evaluated on the held-out batch), and (iii) that cross-fitted estimate's own standard error.
  Without (ii) the error bars were 2–3 times too small for Gaussian input with 64 directions. Measured for
  Gaussian input (p = 4, n = 2·10⁵, 64 directions): over 40 samples, L(π/4) had mean error bar 0.0038 against an
  actual RMS error of 0.0030 (conservative on average); over 15 samples × 4 angles × 3 estimators the RMS of
  z = (value − closed form)/se was 1.03–1.16. Because se is itself estimated from ``n_batches`` batches, z has
  heavier tails than a normal: |z| > 3 occurred in about 1 of 40 single comparisons, so allow more than 3 se
  when many comparisons are made at once. The error bar does not cover a missed extreme direction (first note)
  for laws that are not rotation invariant around w* in p > 2. For the non-symmetric cross moments the
  cross-fitted estimate evaluates the top singular pair uᵀTv chosen on the other batches (see
  :func:`filterlib.theory.extremes.extreme`).

Cost: one pass over the sample per set of angles (:func:`filterlib.theory.moments.candidate_sums`), for
(#φ) × n_directions candidate filters; memory is bounded by chunking.
"""
from __future__ import annotations

import math

import torch

from .. import _validate as v
from .. import config
from . import _inputs
from .extremes import extreme
from .moments import CONV_MOMENT_KEYS, candidate_sums

PER_ANGLE = ("gamma", "L", "L_minus", "cross_sum")
"""The constants of :func:`constants` evaluated at each angle of ``phis``."""
ON_GRID = ("beta", "L_cross")
"""The constants of :func:`constants` that are a maximum over a grid of angles of a value divided by φ."""

# name → (the moments it needs, the extreme it takes of them, whether it is a max over a φ grid of value/φ)
_RECIPES = {"gamma": (("pos",), "min", False), "L": (("pos",), "max", False), "L_minus": (("neg",), "max", False),
            "cross_sum": (("T1", "T2", "T4"), "singular", False), "beta": (("neg",), "max", True),
            "L_cross": (("T1", "T2", "T4"), "singular", True)}


# --------------------------------------------------------------------------------------------------------------
# Several constants from one pass


def constants(Z, w_star, phis=None, *, which=("gamma", "L"), beta_phis=None, cross_phis=None,
              n_directions: int = 64, seed: int = 0, return_se: bool = False, n_batches: int = 10) -> dict:
    """Several constants of Assumptions 4.1–4.2 (Definition 3.1 and Assumption 3.2 for k = 1) from one pass over
    the sample per set of angles. Used by the diagnose command (chapters/diagnose.md); the constants are defined
    in chapters/smoothness.md and chapters/conv_model.md.

    ``Z`` has shape (n, k, p), any k ≥ 1; ``which`` names the constants (a tuple, or one name as a string):

    * at each angle of ``phis`` (a number gives 0-d tensors, a 1-D array of q angles in [0, π] shape (q,)):
      ``"gamma"`` and ``"L"`` (:func:`conv_gamma`, :func:`conv_L`), ``"L_minus"`` (:func:`conv_L_minus`) and
      ``"cross_sum"`` (:func:`cross_sum`);
    * maxima over a grid (0-d): ``"beta"``, the max over ``beta_phis`` (default :func:`default_beta_grid`) of
      L_minus(φ)/φ (:func:`conv_beta`), and ``"L_cross"``, the max over ``cross_phis`` (default
      :func:`default_cross_grid`) of cross_sum(φ)/φ (:func:`L_cross`); grids lie in (0, π/2].

    Returns {name: value} in the order of ``which``, or with ``return_se=True`` {name: (value, error bar)} (the
    error bar of the module notes, from ``n_batches`` contiguous batches). ``n_directions`` and ``seed`` choose
    the directions at each angle, the same for every constant and every angle.

    One pass over the sample per distinct set of angles, computing only the moments needed ("pos" for gamma and
    L, "neg" for L_minus and beta, "T1", "T2", "T4" for cross_sum and L_cross); a set of angles equal to a
    contiguous piece of another set (the default beta grid is the tail of the default cross grid) shares that
    set's pass. A constant whose pass computes the same moments at the same angles as its single estimator
    equals that estimator bit for bit (e.g. ``which=("gamma", "L")`` and :func:`conv_gamma`, :func:`conv_L`, or
    k = 1 and :func:`gamma`, :func:`L`); a constant sharing a pass with other moments or other angles agrees
    with it to rounding (the sums are accumulated in other chunks).
    """
    Z, w_star, n_directions, seed, B = _setup(Z, w_star, n_directions, seed, return_se, n_batches)
    names = _names(which)
    angle_sets, scalar = {}, False
    if any(name in PER_ANGLE for name in names):
        if phis is None:
            raise ValueError(f"phis is needed for {', '.join(n for n in names if n in PER_ANGLE)}: pass the angles")
        angles, scalar = _inputs.angles(phis, Z, "phis")
    for name in names:
        if name in PER_ANGLE:
            angle_sets[name] = angles
        elif name == "beta":
            angle_sets[name] = _grid(beta_phis, Z, default_beta_grid, "beta_phis")
        else:
            angle_sets[name] = _grid(cross_phis, Z, default_cross_grid, "cross_phis")
    found = _estimates(Z, w_star, angle_sets, n_directions, seed, B, return_se)
    return {name: _finish(*found[name], scalar and name in PER_ANGLE, return_se) for name in names}


def _names(which) -> list:
    names = [which] if isinstance(which, str) else list(which)
    if not names:
        raise ValueError(f"which must name at least one of {tuple(_RECIPES)}")
    for name in names:
        if name not in _RECIPES:
            raise ValueError(f"which must name constants among {tuple(_RECIPES)}, got {name!r}")
    return list(dict.fromkeys(names))


def _setup(Z, w_star, n_directions, seed, return_se, n_batches, *, one_patch: bool = False):
    Z = _inputs.sample(Z, one_patch=one_patch)
    w_star = _inputs.teacher(w_star, Z)
    n_directions = v.positive_int(n_directions, "n_directions")
    seed = v.nonneg_int(seed, "seed")
    B = _inputs.batches(n_batches, Z, return_se)
    return Z, w_star, n_directions, seed, B


def _grid(phis, Z, default, name: str = "phis") -> torch.Tensor:
    return _inputs.grid(default(dtype=Z.dtype, device=Z.device) if phis is None else phis, Z, name)


def _finish(value, se, scalar: bool, return_se: bool):
    if scalar:
        value, se = value[0], (se[0] if se is not None else None)
    return (value, se) if return_se else value


def _estimates(Z, w_star, angle_sets: dict, n_directions: int, seed: int, B: int, return_se: bool) -> dict:
    """{name: (value, se or None)} for the constants named by ``angle_sets`` (name → its angles), one pass of
    :func:`candidate_sums` per pass of :func:`_passes`."""
    out = {}
    for host, members in _passes(angle_sets):
        keys = [key for key in CONV_MOMENT_KEYS if any(key in _RECIPES[name][0] for name, _ in members)]
        S, counts = candidate_sums(Z, w_star, host, n_directions, seed, B, keys)
        for name, start in members:
            moments, kind, over_grid = _RECIPES[name]
            angles = angle_sets[name]
            piece = slice(start, start + angles.shape[0])
            terms = [S[key][:, piece] for key in moments]
            out[name] = extreme(terms[0] if len(terms) == 1 else terms, counts, kind=kind,
                                scale=1 / angles if over_grid else None, over_grid=over_grid, return_se=return_se)
    return out


def _passes(angle_sets: dict) -> list:
    """The passes over the sample: [(angles, [(name, start), …])], longest sets first; a set equal to a contiguous
    piece angles[start:start + q] of an earlier pass's angles joins that pass."""
    passes = []
    for name in sorted(angle_sets, key=lambda key: -angle_sets[key].shape[0]):
        piece = angle_sets[name]
        for host, members in passes:
            start = _find(piece, host)
            if start is not None:
                members.append((name, start))
                break
        else:
            passes.append((piece, [(name, 0)]))
    return passes


def _find(piece: torch.Tensor, whole: torch.Tensor):
    """The first start with whole[start:start + len(piece)] == piece exactly, or None."""
    q = piece.shape[0]
    for start in range(whole.shape[0] - q + 1):
        if torch.equal(whole[start:start + q], piece):
            return start
    return None


# --------------------------------------------------------------------------------------------------------------
# One constant: Part I (k = 1) and Part II (any k)


def _at_angles(name, Z, w_star, phi, n_directions, seed, return_se, n_batches, *, one_patch: bool = False):
    Z, w_star, n_directions, seed, B = _setup(Z, w_star, n_directions, seed, return_se, n_batches,
                                             one_patch=one_patch)
    angles, scalar = _inputs.angles(phi, Z)
    found = _estimates(Z, w_star, {name: angles}, n_directions, seed, B, return_se)
    return _finish(*found[name], scalar, return_se)


def _on_grid(name, Z, w_star, phis, default, n_directions, seed, return_se, n_batches, *, one_patch: bool = False):
    Z, w_star, n_directions, seed, B = _setup(Z, w_star, n_directions, seed, return_se, n_batches,
                                             one_patch=one_patch)
    found = _estimates(Z, w_star, {name: _grid(phis, Z, default)}, n_directions, seed, B, return_se)
    return _finish(*found[name], False, return_se)


def gamma(Z, w_star, phi, *, n_directions: int = 64, seed: int = 0, return_se: bool = False, n_batches: int = 10):
    """Monte-Carlo γ(φ) = min_{θ(w,w*)=φ} λ_min(A_{w,w*}) of Definition 3.1 on a sample Z (n, 1, p). Defined in
    chapters/smoothness.md.

    ``phi`` is a number (returns a 0-d tensor) or a 1-D array (returns shape (q,)). The minimum runs over the two
    directions at angle φ (p = 2) or ``n_directions`` random ones seeded by ``seed`` (p > 2); see the module notes
    for the biases. ``return_se=True`` returns (value, error bar): batch means over ``n_batches`` disjoint splits
    combined with a cross-fitted estimate of the min/max selection bias (module notes).
    """
    return _at_angles("gamma", Z, w_star, phi, n_directions, seed, return_se, n_batches, one_patch=True)


def L(Z, w_star, phi, *, n_directions: int = 64, seed: int = 0, return_se: bool = False, n_batches: int = 10):
    """Monte-Carlo L(φ) = max_{θ(w,w*)=φ} λ_max(A_{w,w*}) of Definition 3.1 (the joint moment, not A_w).
    Arguments and return values as in :func:`gamma`. Defined in chapters/smoothness.md."""
    return _at_angles("L", Z, w_star, phi, n_directions, seed, return_se, n_batches, one_patch=True)


def L_minus(Z, w_star, phi, *, n_directions: int = 64, seed: int = 0, return_se: bool = False,
            n_batches: int = 10):
    """Monte-Carlo L_{−w*}(φ) = max_{θ(w,w*)=φ} λ_max(A_{w,−w*}) of Assumption 3.2. As :func:`gamma`. Defined in
    chapters/smoothness.md."""
    return _at_angles("L_minus", Z, w_star, phi, n_directions, seed, return_se, n_batches, one_patch=True)


def beta(Z, w_star, phis=None, *, n_directions: int = 64, seed: int = 0, return_se: bool = False,
         n_batches: int = 10):
    """Monte-Carlo β of Assumption 3.2: max over a grid of φ ∈ (0, π/2] of L_{−w*}(φ)/φ. Defined in
    chapters/smoothness.md.

    ``phis`` defaults to :func:`default_beta_grid` (16 angles from π/32 to π/2). For N(0, I) the ratio
    (φ + sin φ)/(2πφ) decreases in φ, so the grid's smallest angle sets the estimate (1/π in the limit); at small φ
    the ratio's noise is amplified by 1/φ. With ``return_se`` the batch estimates each maximise over the grid.
    """
    return _on_grid("beta", Z, w_star, phis, default_beta_grid, n_directions, seed, return_se, n_batches,
                    one_patch=True)


def conv_gamma(Z, w_star, phi, *, n_directions: int = 64, seed: int = 0, return_se: bool = False,
               n_batches: int = 10):
    """Monte-Carlo γ(φ) of Assumption 4.1: min over w at angle φ of λ_min(E[Z_S(w,w*) Z_S(w,w*)ᵀ]), on a sample
    Z (n, k, p). Defined in chapters/conv_model.md. Arguments, return values and caveats as for the Part I
    :func:`gamma`, which this equals for k = 1 (same directions for the same seed)."""
    return _at_angles("gamma", Z, w_star, phi, n_directions, seed, return_se, n_batches)


def conv_L(Z, w_star, phi, *, n_directions: int = 64, seed: int = 0, return_se: bool = False,
           n_batches: int = 10):
    """Monte-Carlo L(φ) of Assumption 4.1: max over w at angle φ of λ_max(E[Z_S(w,w*) Z_S(w,w*)ᵀ]).
    As :func:`conv_gamma`; equals the Part I :func:`L` for k = 1. Defined in chapters/conv_model.md."""
    return _at_angles("L", Z, w_star, phi, n_directions, seed, return_se, n_batches)


def conv_L_minus(Z, w_star, phi, *, n_directions: int = 64, seed: int = 0, return_se: bool = False,
                 n_batches: int = 10):
    """Monte-Carlo max over w at angle φ of λ_max(E[Z_S(w,−w*) Z_S(w,−w*)ᵀ]), the left side of Assumption 4.1's
    β-condition. As :func:`conv_gamma`; equals the Part I :func:`L_minus` for k = 1. Defined in
    chapters/conv_model.md."""
    return _at_angles("L_minus", Z, w_star, phi, n_directions, seed, return_se, n_batches)


def conv_beta(Z, w_star, phis=None, *, n_directions: int = 64, seed: int = 0, return_se: bool = False,
              n_batches: int = 10):
    """Monte-Carlo β of Assumption 4.1: max over a grid of φ ∈ (0, π/2] of :func:`conv_L_minus`(φ)/φ. Defined in
    chapters/conv_model.md.

    ``phis`` defaults to :func:`default_beta_grid` (16 angles from π/32 to π/2). As the Part I :func:`beta`,
    which this equals for k = 1; returns a 0-d tensor (and its error bar with ``return_se``).
    """
    return _on_grid("beta", Z, w_star, phis, default_beta_grid, n_directions, seed, return_se, n_batches)


def cross_sum(Z, w_star, phi, *, n_directions: int = 64, seed: int = 0, return_se: bool = False,
              n_batches: int = 10):
    """Monte-Carlo left side of Assumption 4.2 at angle φ. Defined in chapters/conv_model.md, used in
    chapters/closeness.md:

    max_w σ_max(T1) + max_w σ_max(T2) + max_w σ_max(T4),  each maximum over w at angle φ to w*,

    with T1 = E[Z_S(w,w*) Z_S(w,−w*)ᵀ], T2 = E[Z_S(w,w*) Z_S(−w,w*)ᵀ], T4 = E[Z_S(w,−w*) Z_S(−w,w*)ᵀ] and σ_max the
    largest singular value (the matrices are not symmetric). ``phi`` in [0, π], a number or a 1-D array;
    arguments and return values as for :func:`gamma`. It is exactly 0 for k = 1 and for identical patches.
    """
    return _at_angles("cross_sum", Z, w_star, phi, n_directions, seed, return_se, n_batches)


def L_cross(Z, w_star, phis=None, *, n_directions: int = 64, seed: int = 0, return_se: bool = False,
            n_batches: int = 10):
    """Monte-Carlo L_cross of Assumption 4.2: max over a grid of φ ∈ (0, π/2] of :func:`cross_sum`(φ)/φ. Defined
    in chapters/conv_model.md.

    ``phis`` defaults to :func:`default_cross_grid` (8 small angles from ≈ 0.002 rad, then π/32, …, π/2), because
    for close patches the supremum can be approached as φ → 0 (see there; it can also be reached at an interior
    angle, so the grid needs both ends); pass ``default_beta_grid()`` to reproduce a
    grid that starts at π/32, which gives a much smaller value for close patches. The ratio's noise is amplified
    by 1/φ at small φ. Returns a 0-d tensor (and its error bar with ``return_se``, which includes the selection
    over the grid). L_cross = 0 when all patches of every input are equal (and for k = 1).
    """
    return _on_grid("L_cross", Z, w_star, phis, default_cross_grid, n_directions, seed, return_se, n_batches)


# --------------------------------------------------------------------------------------------------------------
# Grids of angles


def default_beta_grid(q: int = 16, *, dtype=None, device=None) -> torch.Tensor:
    """The φ grid used by :func:`beta`: q equally spaced angles π/(2q), 2π/(2q), …, π/2. Defined in
    chapters/smoothness.md."""
    q = v.positive_int(q, "q")
    return torch.arange(1, q + 1, dtype=dtype or config.default_dtype(), device=device) * (math.pi / (2 * q))


def default_cross_grid(q_small: int = 8, q: int = 16, *, smallest: float = 2.0 ** -9, dtype=None,
                       device=None) -> torch.Tensor:
    """The φ grid used by :func:`L_cross` and :func:`mu`: ``q_small`` geometrically spaced angles from
    ``smallest`` (default 2⁻⁹ ≈ 0.002 rad) up to, not including, π/(2q), followed by :func:`default_beta_grid`(q)
    (π/(2q), …, π/2); 24 angles by default. Defined in chapters/conv_model.md.

    Why the small angles: Assumption 4.2 must hold at every φ (Theorem 4.1's proof uses it at θ(w_t, w*) → 0), and
    for close patches cross_sum(φ)/φ can be largest as φ → 0: on the paper's law (base σ = 1, k = 5) it is for
    σ² ≤ 1, while for σ² = 2 and 10 the supremum sits at φ ≈ 0.50 and 0.67 rad, and for base σ = 0.5 with
    σ² ≥ 10⁻³ near 1.4 rad (computed by :func:`filterlib.theory.close_patches_L_cross`; chapters/conv_model.md).
    As φ → 0 it tends to a limit set by the mass near w*'s
    decision boundary that does not vanish as the patches get closer: once φ is below the patches' spread, a
    patch in the thin wedge S(w, −w*) has neighbours on both sides of the boundary. On the close-patches law
    (k = 5, σ² = 10⁻⁴) the ratio is ≈ 0.0067 at π/32 but ≈ 0.05 below 0.003 rad; a grid starting at π/32 misses
    this. Noise grows like 1/φ at small φ: use ``return_se`` and enough samples.
    """
    q_small, q = v.nonneg_int(q_small, "q_small"), v.positive_int(q, "q")
    coarse = default_beta_grid(q, dtype=dtype, device=device)
    top = math.pi / (2 * q)
    smallest = v.positive_float(smallest, "smallest")
    if smallest >= top:
        raise ValueError(f"smallest must be below π/(2q) = {top:.6g}, got {smallest!r}")
    small = torch.logspace(math.log10(smallest), math.log10(top), q_small + 1, dtype=coarse.dtype,
                           device=coarse.device)[:-1]
    return torch.cat([small, coarse])


# --------------------------------------------------------------------------------------------------------------
# Theorem 4.3: close patches (ρ, μ, γ_avg)


def _angle_to(X: torch.Tensor, d: torch.Tensor):
    """Angles in [0, π] between the rows X (…, p) and unit directions d (broadcastable), by atan2 (accurate for
    tiny angles), and the |π/2 − angle| distance to the boundary; plus the mask of non-zero rows."""
    par = (X * d).sum(dim=-1)
    perp = (X - par[..., None] * d).norm(dim=-1)
    return torch.atan2(perp, par), torch.atan2(par.abs(), perp), X.norm(dim=-1) > 0


def rho(Z) -> torch.Tensor:
    """ρ of Theorem 4.3 on a sample Z (n, k, p): max over inputs and patches of θ(Z_i, Z_avg) in radians, with
    Z_avg = (1/k) Σ_i Z_i. A 0-d tensor. Defined in chapters/closeness.md.

    A zero patch has no direction and is skipped; an input whose Z_avg is 0 raises ValueError naming Z.
    The theorem's ρ is a bound over the whole support of the law; this is a maximum over the sample, so it grows
    with n toward that bound and never exceeds it. For :func:`filterlib.distributions.close_patches` the jitter
    reaches ±π, so some inputs have a patch opposite their average and the population ρ is π for every σ² > 0;
    the sample value stays near a few σ for any feasible n.
    """
    Z = _inputs.sample(Z)
    avg = Z.mean(dim=1)
    norms = avg.norm(dim=-1)
    if bool((norms == 0).any()):
        j = int((norms == 0).nonzero()[0])
        raise ValueError(f"Z has an input (index {j}) whose patch average Z_avg is 0, so θ(Z_i, Z_avg) is undefined")
    theta, _, nonzero = _angle_to(Z, (avg / norms[:, None])[:, None, :])
    return torch.where(nonzero, theta, torch.zeros_like(theta)).max()


def mu(Z, w_star, phis=None) -> torch.Tensor:
    """μ of Theorem 4.3 on a sample Z (n, k, p): the boundary-mass constant. Defined in chapters/closeness.md.

    The theorem asks, for every φ and every patch index i, P(θ(Z_i, w*) ∈ [π/2 − φ, π/2 + φ]) ≤ μφ and
    P(θ(Z_i, w*) ∈ [−π/2 − φ, −π/2 + φ]) ≤ μφ, with θ the signed angle in the plane: two bands, one on each side
    of w* where w*'s decision boundary crosses the circle. For p = 2 this returns

    μ = max over i, over the two bands and over a grid of φ ∈ (0, π/2] of P(band) / φ,

    with θ measured from ŵ* toward its +90° rotation and P the fraction of the n inputs. For p > 2 a signed angle
    does not exist; the band is then the one around the whole boundary, |θ(Z_i, w*) − π/2| ≤ φ with θ ∈ [0, π]
    (in the plane that band is the union of the two, so it is at least either). ``phis`` defaults to
    :func:`default_cross_grid` (≈ 0.002 rad … π/2); pass small angles only for the band density near the
    boundary, which is what bounds L_cross at small φ (chapters/closeness.md). At φ = π/2 the two bands cover the
    circle, so a grid reaching π/2 gives μ ≥ 1/π for any law (p = 2). At small φ the estimate is noisy (a count
    over φ). Zero patches count as outside every band (they contribute nothing to any Z_S). A 0-d tensor.
    """
    Z = _inputs.sample(Z)
    w_star = _inputs.teacher(w_star, Z)
    grid = _grid(phis, Z, default_cross_grid)
    what = w_star / w_star.norm()
    if Z.shape[-1] == 2:
        perp = torch.stack([-what[1], what[0]])
        dists = [_angle_to(Z, perp)[0], _angle_to(Z, -perp)[0]]            # distances to the signed ±π/2
    else:
        dists = [_angle_to(Z, what)[1]]                                    # distance to the boundary
    nonzero = Z.norm(dim=-1) > 0
    best = None
    for dist in dists:
        dist = torch.where(nonzero, dist, torch.full_like(dist, math.inf))
        sorted_dist = dist.T.contiguous().sort(dim=-1).values              # (k, n)
        inside = torch.searchsorted(sorted_dist, grid.expand(Z.shape[1], -1).contiguous(), right=True)  # (k, q)
        ratio = (inside.to(Z.dtype) / Z.shape[0] / grid).max()
        best = ratio if best is None else torch.maximum(best, ratio)
    return best


def gamma_avg(Z, w_star, phi, *, n_directions: int = 64, seed: int = 0, return_se: bool = False,
              n_batches: int = 10):
    """γ_avg(φ) of Theorem 4.3: the one-neuron γ(φ) (Part I :func:`gamma`, Def. 3.1) of the averaged patch
    Z_avg = (1/k) Σ_i Z_i, i.e. ``gamma(Z.mean(1, keepdim=True), …)`` (Z_avg is not renormalised).
    Arguments and return values as for :func:`gamma`. Defined in chapters/closeness.md."""
    Z = _inputs.sample(Z)
    phis, scalar = _inputs.angles(phi, Z)
    return gamma(Z.mean(dim=1, keepdim=True), w_star, phis[0] if scalar else phis, n_directions=n_directions,
                 seed=seed, return_se=return_se, n_batches=n_batches)


def closeness_bounds(Z, w_star, phi, *, phis=None, n_directions: int = 64, seed: int = 0) -> dict:
    """Both sides of Theorem 4.3's two inequalities on a sample Z (n, k, p). Defined in chapters/closeness.md:

    * ``"gamma"`` = :func:`conv_gamma`(φ), ``"gamma_avg"`` = :func:`gamma_avg`(φ), ``"rho"`` = :func:`rho` and
      ``"lower_bound"`` = gamma_avg − 4(1 − cos ρ): the theorem claims gamma ≥ lower_bound;
    * ``"L_cross"`` = :func:`L_cross` and ``"mu"`` = :func:`mu` on the grid ``phis`` (default
      :func:`default_cross_grid`), ``"upper_bound"`` = 3μ: the theorem claims L_cross ≤ upper_bound. On a grid
      reaching π/2, μ ≥ 1/π for any law in the plane, so 3μ ≥ 0.95; the proof bounds cross_sum(φ) by 3μφ angle
      by angle, so a grid of small angles alone tests the bound where L_cross is reached.

    The theorem assumes unit-norm patches. Values are tensors: 0-d, or shape (q,) for gamma, gamma_avg and
    lower_bound when ``phi`` is a 1-D array of q angles.
    """
    Z = _inputs.sample(Z)
    w_star = _inputs.teacher(w_star, Z)
    kw = dict(n_directions=n_directions, seed=seed)
    out = {"gamma": conv_gamma(Z, w_star, phi, **kw), "gamma_avg": gamma_avg(Z, w_star, phi, **kw), "rho": rho(Z)}
    out["lower_bound"] = out["gamma_avg"] - 4 * (1 - torch.cos(out["rho"]))
    out["L_cross"] = L_cross(Z, w_star, phis, **kw)
    out["mu"] = mu(Z, w_star, phis)
    out["upper_bound"] = 3 * out["mu"]
    return out
