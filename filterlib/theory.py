"""One-neuron theory of Part I: Definition 3.1, Assumption 3.2, Theorems 3.1 and 3.2 (SPEC §1.2, §1.4, §2.1, §4).

For a sample ``Z`` of shape (n, 1, p) (one patch, k = 1) and a teacher ``w_star``:

* :func:`A_matrices`: the second moments A_{w,w*} = E[ZZᵀ 1{S(w, w*)}] and A_{w,−w*} = E[ZZᵀ 1{S(w, −w*)}] whose
  positive definiteness is Theorem 3.1's assumption; ∇ℓ(w) = A_{w,w*}(w − w*) + A_{w,−w*} w (SPEC §1.2).
* :func:`lemma_a1_violations`: per-sample check of Lemma A.1 (the inequality behind Theorem 3.1's proof).
* :func:`directions_at_angle`: unit filters w with θ(w, w*) = φ exactly.
* :func:`gamma`, :func:`L`, :func:`L_minus`, :func:`beta`: Monte-Carlo estimates of γ(φ), L(φ) (Def. 3.1),
  L_{−w*}(φ) and β (Assumption 3.2), optionally with an error bar (``return_se=True``, see below).
* :func:`gaussian_gamma`, :func:`gaussian_L`, :func:`gaussian_L_minus`, :data:`GAUSSIAN_BETA`,
  :func:`gaussian_loss`, :func:`gaussian_gradient`: closed forms for N(0, I) patches (SPEC §4, [DER]).
* :func:`phi_t`, :func:`step_cap`, :func:`contraction_bound`, :func:`iterations_bound`: the quantities of
  Theorem 3.2 (linear rate of gradient descent).

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
  for laws that are not rotation invariant around w* in p > 2.

Part II (the convolutional filter, k patches per input; chapters conv_model, closeness, sgd, init) is the last
section of this module, separated by a banner: :func:`conv_moments`, :func:`four_region_gradient`, the estimators
:func:`conv_gamma`, :func:`conv_L`, :func:`conv_L_minus`, :func:`conv_beta` (Assumption 4.1), :func:`cross_sum`,
:func:`L_cross` (Assumption 4.2), Theorem 4.1's :func:`conv_condition_holds`, :func:`conv_step_cap`,
:func:`conv_contraction_bound`, :func:`conv_iterations_bound`, and Theorem 4.3's :func:`rho`, :func:`mu`,
:func:`gamma_avg`, :func:`closeness_bounds`. The estimator notes below apply to them too.

Cost: one pass over the sample per call, two matrix products per chunk (indicators (M, c) times per-sample outer
products (c, p²)) for M = (#φ) × n_directions candidate filters; memory is bounded by chunking.
"""
from __future__ import annotations

import math
import numbers

import torch

from . import _validate as v
from . import config, rng

GAUSSIAN_BETA = 1.0 / math.pi
"""β of Assumption 3.2 for N(0, I_p) patches: L_{−w*}(φ)/φ = (φ + sin φ)/(2πφ) ≤ 1/π (SPEC §2.1 [DER])."""

_CHUNK_ELEMENTS = 1 << 23  # bound on the elements of any intermediate in A_matrices (64 MiB in float64)


# --------------------------------------------------------------------------------------------------------------
# Input checks


def _check_sample(Z) -> torch.Tensor:
    Z = v.tensor(Z, "Z", ndim=3)
    if Z.shape[1] != 1:
        raise ValueError(f"Z must hold one patch per sample (k = 1, the one-neuron model of Part I): expected shape "
                         f"(n, 1, p), got {tuple(Z.shape)}")
    return Z


def _check_teacher(w_star, Z: torch.Tensor | None = None, *, dtype=None, device=None) -> torch.Tensor:
    if Z is not None:
        dtype, device = Z.dtype, Z.device
    w_star = v.tensor(w_star, "w_star", ndim=1, dtype=dtype if not isinstance(w_star, torch.Tensor) else None)
    if Z is not None:
        v.same_float(w_star, Z, "w_star", "Z")
        if w_star.shape[0] != Z.shape[-1]:
            raise ValueError(f"w_star must have shape (p,) = ({Z.shape[-1]},), got {tuple(w_star.shape)}")
    elif device is not None:
        w_star = w_star.to(device)
    v.nonzero_rows(w_star, "w_star")
    return w_star


def _check_phi(phi, name: str, *, dtype, device, low: float = 0.0, high: float = math.pi,
               open_low: bool = False) -> tuple[torch.Tensor, bool]:
    """phi as a 1-D float tensor and whether it was a scalar; every value must lie in [low, high]."""
    if isinstance(phi, bool):
        raise TypeError(f"{name} must be a number or a 1-D array of angles in radians, got {phi!r}")
    t = v.tensor(phi, name, ndim=(0, 1), dtype=dtype if not isinstance(phi, torch.Tensor) else None)
    t = t.to(dtype=dtype, device=device)
    scalar = t.dim() == 0
    t = t.reshape(-1)
    bad = (t <= low) if open_low else (t < low)
    bad = bad | (t > high * (1 + 8 * torch.finfo(t.dtype).eps))    # float32(π) > π is still accepted
    if bool(bad.any()):
        interval = f"({low:g}, {high:.6g}]" if open_low else f"[{low:g}, {high:.6g}]"
        raise ValueError(f"{name} must lie in {interval} (radians), got {t[bad][0].item()!r}")
    return t.clamp(max=high), scalar


def _check_filters(w, Z: torch.Tensor) -> torch.Tensor:
    w = v.tensor(w, "w", ndim=(1, 2))
    v.same_float(w, Z, "w", "Z")
    if w.shape[-1] != Z.shape[-1]:
        raise ValueError(f"w must have size p={Z.shape[-1]} in its last dimension, got shape {tuple(w.shape)}")
    return w


# --------------------------------------------------------------------------------------------------------------
# Second moments and directions


def _A_sums(W: torch.Tensor, w_star: torch.Tensor, X: torch.Tensor, n_batches: int = 1):
    """Unnormalised Σ_n ZZᵀ 1{…} over each of ``n_batches`` contiguous batches of X (n, p), for every row of W.

    Returns (S_pos, S_neg, counts) with S of shape (n_batches, M, p, p). The work is two matrix products per
    chunk of samples: indicators (M, c) times per-sample outer products (c, p²); chunks keep memory bounded.
    """
    n, p = X.shape
    M = W.shape[0]
    s_pos = torch.zeros(n_batches, M, p * p, dtype=X.dtype, device=X.device)
    s_neg = torch.zeros_like(s_pos)
    bounds = [round(b * n / n_batches) for b in range(n_batches + 1)]
    chunk = max(1, _CHUNK_ELEMENTS // (M + p * p + 1))
    for b in range(n_batches):
        for start in range(bounds[b], bounds[b + 1], chunk):
            x = X[start:min(start + chunk, bounds[b + 1])]
            act = (x @ W.T >= 0).T.to(X.dtype)                       # (M, c): 1{wᵀZ ≥ 0}
            pos = (x @ w_star >= 0).to(X.dtype)                      # (c,):   1{w*ᵀZ ≥ 0}
            outer = (x[:, :, None] * x[:, None, :]).reshape(-1, p * p)
            s_pos[b] += (act * pos) @ outer
            s_neg[b] += (act * (1 - pos)) @ outer
    counts = torch.tensor([bounds[b + 1] - bounds[b] for b in range(n_batches)], dtype=X.dtype, device=X.device)
    return s_pos.reshape(n_batches, M, p, p), s_neg.reshape(n_batches, M, p, p), counts


def A_matrices(w, w_star, Z) -> tuple[torch.Tensor, torch.Tensor]:
    """Empirical (A_{w,w*}, A_{w,−w*}) of SPEC §1.2 (Theorem 3.1, Def. 3.1, Assumption 3.2, Lemma A.1).

    A_{w,w*} = mean_n[Z Zᵀ 1{wᵀZ ≥ 0, w*ᵀZ ≥ 0}] and A_{w,−w*} = mean_n[Z Zᵀ 1{wᵀZ ≥ 0, w*ᵀZ < 0}] for Z of
    shape (n, 1, p). ``w`` of shape (p,) gives two (p, p) matrices; (m, p) gives two (m, p, p) stacks. On the
    same sample, the gradient of :func:`filterlib.loss` (k = 1) is A_{w,w*}(w − w*) + A_{w,−w*} w exactly.
    """
    Z = _check_sample(Z)
    w = _check_filters(w, Z)
    w_star = _check_teacher(w_star, Z)
    W = w.reshape(-1, w.shape[-1])
    s_pos, s_neg, _ = _A_sums(W, w_star, Z[:, 0, :])
    n = Z.shape[0]
    a_pos, a_neg = s_pos[0] / n, s_neg[0] / n
    if w.dim() == 1:
        return a_pos[0], a_neg[0]
    return a_pos, a_neg


def lemma_a1_violations(w, w_star, Z, *, tol: float = 1e-12) -> torch.Tensor:
    """Number of samples violating Lemma A.1's per-sample inequality (SPEC §1.2 [DER]), for each filter:

    (w − w*)ᵀZ 1{wᵀZ ≥ 0}(σ(wᵀZ) − σ(w*ᵀZ)) ≥ 1{S(w, w*)}((w − w*)ᵀZ)²,

    whose mean over Z is ⟨∇ℓ(w), w − w*⟩ ≥ (w − w*)ᵀA_{w,w*}(w − w*). A sample counts as a violation when the left
    side falls below the right side by more than ``tol``·(1 + right side) (round-off allowance). Returns an int64
    tensor: shape () for ``w`` of shape (p,), (R,) for (R, p). The inequality holds for every sample, so the
    answer should be 0.
    """
    Z = _check_sample(Z)
    w = _check_filters(w, Z)
    w_star = _check_teacher(w_star, Z)
    tol = float(v.positive_float(tol, "tol"))
    W = w.reshape(-1, w.shape[-1])
    X = Z[:, 0, :]
    a = X @ W.T                                                       # (n, R): wᵀZ
    b = (X @ w_star)[:, None]                                         # (n, 1): w*ᵀZ
    uz = X @ (W - w_star).T                                           # (n, R): (w − w*)ᵀZ
    act = a >= 0
    lhs = uz * act * (torch.relu(a) - torch.relu(b))
    rhs = (act & (b >= 0)) * uz ** 2
    counts = (lhs < rhs - tol * (1 + rhs)).sum(dim=0)
    return counts[0] if w.dim() == 1 else counts


def directions_at_angle(w_star, phi, m: int, *, generator: torch.Generator | None = None,
                        seed: int | None = None) -> torch.Tensor:
    """m unit filters w with θ(w, w*) = φ exactly (Def. 3.1's min/max runs over these).

    w = cos φ ŵ* + sin φ u with u a unit vector ⟂ ŵ*: uniform on that sphere for p > 2 (drawn from ``generator``
    or ``seed``), and the two choices u = ±ŵ*⊥ (the +90° rotation), alternating, for p = 2 (no randomness; the
    generator/seed is then optional). ``phi`` a number gives shape (m, p); a 1-D array of q angles gives
    (q, m, p), with the *same* m vectors u at every φ (so estimates at one φ do not depend on the other φ's
    requested, and curves in φ are smooth). Dtype and device are those of ``w_star`` (as a tensor) or the
    filterlib default.
    """
    m = v.positive_int(m, "m")
    w_star = _check_teacher(w_star)
    phis, scalar = _check_phi(phi, "phi", dtype=w_star.dtype, device=w_star.device)
    p = w_star.shape[0]
    if p < 2:
        raise ValueError(f"w_star must have at least 2 entries (an angle needs a plane), "
                         f"got shape {tuple(w_star.shape)}")
    what = w_star / w_star.norm()
    if p == 2:
        perp = torch.stack([-what[1], what[0]])
        signs = torch.tensor([1.0 if j % 2 == 0 else -1.0 for j in range(m)], dtype=what.dtype, device=what.device)
        u = signs[:, None] * perp                                   # (m, 2)
        u = u.expand(phis.shape[0], m, 2)
    else:
        g = rng.resolve_generator(generator, seed)               # p > 2 needs a seed or a generator
        x = torch.randn(m, p, generator=g, dtype=what.dtype, device=g.device).to(what.device)
        x = x - (x @ what)[..., None] * what
        norms = x.norm(dim=-1, keepdim=True)
        if bool((norms == 0).any()):                                # probability zero
            raise RuntimeError("drew a direction parallel to w_star; use another seed")
        u = (x / norms).expand(phis.shape[0], m, p)
    out = torch.cos(phis)[:, None, None] * what + torch.sin(phis)[:, None, None] * u
    return out[0] if scalar else out


# --------------------------------------------------------------------------------------------------------------
# Monte-Carlo estimators of Def. 3.1 and Assumption 3.2


def _candidates(Z, w_star, phis: torch.Tensor, n_directions: int, seed: int, n_batches: int, which: str):
    """Batch sums of the relevant A-matrix for every (φ, direction) candidate: (S (B, q, m, p, p), counts (B,))."""
    X = Z[:, 0, :]
    p = X.shape[1]
    m = 2 if p == 2 else n_directions
    g = None if p == 2 else rng.generator(seed, Z.device)
    W = directions_at_angle(w_star, phis, m, generator=g).reshape(-1, p)  # (q·m, p)
    s_pos, s_neg, counts = _A_sums(W, w_star, X, n_batches)
    S = s_pos if which in ("gamma", "L") else s_neg
    return S.reshape(n_batches, phis.shape[0], m, p, p), counts


def _extreme(S, counts, scale, lowest: bool, return_se: bool):
    """Plug-in extreme over the candidate axis and, optionally, its error bar.

    ``S`` (B, c, m, p, p) holds batch sums for c groups of m candidates; ``scale`` (c, m) multiplies each
    candidate's eigenvalue (1/φ for β). The value is, per group, the min of λ_min (``lowest``) or the max of
    λ_max over the m candidates on the full sample. The error bar is sqrt(se_bm² + se_cf² + bias²): se_bm is
    the batch-means standard error (the estimator recomputed on each of the B disjoint batches; std/√B), bias is
    the value minus a B-fold cross-fitted estimate (for each batch the candidate and its eigenvector are chosen on
    the other B − 1 batches, and the Rayleigh quotient is evaluated on the held-out batch, which is unbiased for
    that fixed choice) and se_cf is that estimate's standard error. The bias term captures the noise-selection
    bias of a min/max over many near-optimal candidates and the O(1/n) bias of an eigenvalue of a noisy matrix.
    """
    n = counts.sum()
    e = 0 if lowest else -1
    pick = (lambda t: t.min(dim=-1)) if lowest else (lambda t: t.max(dim=-1))
    value = pick(torch.linalg.eigvalsh(S.sum(0) / n)[..., e] * scale).values              # (c,)
    if not return_se:
        return value, None
    B = S.shape[0]
    cnt = counts.reshape(B, 1, 1, 1, 1)
    batch_vals = pick(torch.linalg.eigvalsh(S / cnt)[..., e] * scale).values               # (B, c)
    se_bm = batch_vals.std(dim=0, unbiased=True) / math.sqrt(B)
    lam, vec = torch.linalg.eigh((S.sum(0, keepdim=True) - S) / (n - cnt))                 # trained without batch b
    best = pick(lam[..., e] * scale).indices                                                # (B, c)
    b_idx = torch.arange(B, device=S.device)[:, None]
    c_idx = torch.arange(S.shape[1], device=S.device)[None, :]
    v_sel = vec[b_idx, c_idx, best][..., :, e]                                              # (B, c, p)
    held = (S / cnt)[b_idx, c_idx, best]                                                    # (B, c, p, p)
    rq = torch.einsum("bci,bcij,bcj->bc", v_sel, held, v_sel)
    held_out = rq * scale[c_idx, best]                                                      # (B, c)
    crossfit = held_out.mean(dim=0)
    se_cf = held_out.std(dim=0, unbiased=True) / math.sqrt(B)
    return value, torch.sqrt(se_bm ** 2 + se_cf ** 2 + (value - crossfit) ** 2)


def _estimate(which, Z, w_star, phi, n_directions, seed, return_se, n_batches):
    Z = _check_sample(Z)
    w_star = _check_teacher(w_star, Z)
    phis, scalar = _check_phi(phi, "phi", dtype=Z.dtype, device=Z.device)
    n_directions = v.positive_int(n_directions, "n_directions")
    seed = v.nonneg_int(seed, "seed")
    B = _check_batches(n_batches, Z, return_se)
    S, counts = _candidates(Z, w_star, phis, n_directions, seed, B, which)
    scale = torch.ones(S.shape[1:3], dtype=Z.dtype, device=Z.device)
    value, se = _extreme(S, counts, scale, which == "gamma", return_se)
    if scalar:
        value, se = value[0], (se[0] if se is not None else None)
    return (value, se) if return_se else value


def _check_batches(n_batches, Z, return_se) -> int:
    if not isinstance(return_se, bool):
        raise TypeError(f"return_se must be True or False, got {return_se!r}")
    if not return_se:
        return 1
    B = v.positive_int(n_batches, "n_batches")
    if B < 2:
        raise ValueError(f"n_batches must be at least 2 for a standard error, got {B}")
    if Z.shape[0] < 2 * B:
        raise ValueError(f"Z has {Z.shape[0]} samples; a batch-means standard error with n_batches={B} needs at "
                         f"least {2 * B}")
    return B


def gamma(Z, w_star, phi, *, n_directions: int = 64, seed: int = 0, return_se: bool = False, n_batches: int = 10):
    """Monte-Carlo γ(φ) = min_{θ(w,w*)=φ} λ_min(A_{w,w*}) of Definition 3.1 on a sample Z (n, 1, p).

    ``phi`` is a number (returns a 0-d tensor) or a 1-D array (returns shape (q,)). The minimum runs over the two
    directions at angle φ (p = 2) or ``n_directions`` random ones seeded by ``seed`` (p > 2); see the module notes
    for the biases. ``return_se=True`` returns (value, error bar): batch means over ``n_batches`` disjoint splits
    combined with a cross-fitted estimate of the min/max selection bias (module notes).
    """
    return _estimate("gamma", Z, w_star, phi, n_directions, seed, return_se, n_batches)


def L(Z, w_star, phi, *, n_directions: int = 64, seed: int = 0, return_se: bool = False, n_batches: int = 10):
    """Monte-Carlo L(φ) = max_{θ(w,w*)=φ} λ_max(A_{w,w*}) of Definition 3.1 (the joint moment, not A_w).
    Arguments and return values as in :func:`gamma`."""
    return _estimate("L", Z, w_star, phi, n_directions, seed, return_se, n_batches)


def L_minus(Z, w_star, phi, *, n_directions: int = 64, seed: int = 0, return_se: bool = False,
            n_batches: int = 10):
    """Monte-Carlo L_{−w*}(φ) = max_{θ(w,w*)=φ} λ_max(A_{w,−w*}) of Assumption 3.2. As :func:`gamma`."""
    return _estimate("L_minus", Z, w_star, phi, n_directions, seed, return_se, n_batches)


def default_beta_grid(q: int = 16, *, dtype=None, device=None) -> torch.Tensor:
    """The φ grid used by :func:`beta`: q equally spaced angles π/(2q), 2π/(2q), …, π/2."""
    q = v.positive_int(q, "q")
    return torch.arange(1, q + 1, dtype=dtype or config.default_dtype(), device=device) * (math.pi / (2 * q))


def beta(Z, w_star, phis=None, *, n_directions: int = 64, seed: int = 0, return_se: bool = False,
         n_batches: int = 10):
    """Monte-Carlo β of Assumption 3.2: max over a grid of φ ∈ (0, π/2] of L_{−w*}(φ)/φ.

    ``phis`` defaults to :func:`default_beta_grid` (16 angles from π/32 to π/2). For N(0, I) the ratio
    (φ + sin φ)/(2πφ) decreases in φ, so the grid's smallest angle sets the estimate (1/π in the limit); at small φ
    the ratio's noise is amplified by 1/φ. With ``return_se`` the batch estimates each maximise over the grid.
    """
    Z = _check_sample(Z)
    w_star = _check_teacher(w_star, Z)
    if phis is None:
        phis = default_beta_grid(dtype=Z.dtype, device=Z.device)
    grid, _ = _check_phi(phis, "phis", dtype=Z.dtype, device=Z.device, high=math.pi / 2, open_low=True)
    n_directions = v.positive_int(n_directions, "n_directions")
    seed = v.nonneg_int(seed, "seed")
    B = _check_batches(n_batches, Z, return_se)
    S, counts = _candidates(Z, w_star, grid, n_directions, seed, B, "L_minus")
    q, m = S.shape[1], S.shape[2]
    S = S.reshape(B, 1, q * m, *S.shape[-2:])                   # one group: every (φ, direction) pair
    scale = (1 / grid).repeat_interleave(m)[None, :]            # (1, q·m)
    value, se = _extreme(S, counts, scale, False, return_se)
    return (value[0], se[0]) if return_se else value[0]


# --------------------------------------------------------------------------------------------------------------
# Closed forms for N(0, I_p) patches (SPEC §4, all [DER] and Monte-Carlo checked)


def _phi_tensor(phi, name="phi"):
    """φ for the closed forms: keeps a torch tensor's float dtype and device, and a numpy array's float64."""
    dtype = config.default_dtype()
    if isinstance(phi, torch.Tensor) and phi.dtype in v.FLOAT_DTYPES:
        dtype = phi.dtype
    elif str(getattr(phi, "dtype", "")) == "float64":                 # numpy arrays and numpy scalars
        dtype = torch.float64
    device = phi.device if isinstance(phi, torch.Tensor) else None
    t, scalar = _check_phi(phi, name, dtype=dtype, device=device)
    return t, scalar


def gaussian_gamma(phi) -> torch.Tensor:
    """γ(φ) = (π − φ − sin φ)/(2π) for N(0, I_p) patches (SPEC §4 item 5): the smaller in-plane eigenvalue of
    A_{w,w*}; 0.5 at φ = 0, 0 at φ = π, decreasing. Same shape as ``phi`` (0-d for a number)."""
    t, scalar = _phi_tensor(phi)
    out = (math.pi - t - torch.sin(t)) / (2 * math.pi)
    return out[0] if scalar else out


def gaussian_L(phi) -> torch.Tensor:
    """L(φ) = (π − φ + sin φ)/(2π) for N(0, I_p) patches (SPEC §4 item 5): the larger in-plane eigenvalue of
    A_{w,w*}; equal to γ only at φ ∈ {0, π}."""
    t, scalar = _phi_tensor(phi)
    out = (math.pi - t + torch.sin(t)) / (2 * math.pi)
    return out[0] if scalar else out


def gaussian_L_minus(phi) -> torch.Tensor:
    """L_{−w*}(φ) = (φ + sin φ)/(2π) ≤ φ/π for N(0, I_p) patches (SPEC §2.1, §4 item 4), hence β = 1/π."""
    t, scalar = _phi_tensor(phi)
    out = (t + torch.sin(t)) / (2 * math.pi)
    return out[0] if scalar else out


def _check_pair(w, w_star):
    w = v.tensor(w, "w", ndim=(1, 2))
    w_star = v.tensor(w_star, "w_star", ndim=1, dtype=w.dtype if not isinstance(w_star, torch.Tensor) else None)
    v.same_float(w, w_star, "w", "w_star")
    if w.shape[-1] != w_star.shape[0]:
        raise ValueError(f"w must have size p={w_star.shape[0]} in its last dimension, got shape {tuple(w.shape)}")
    v.nonzero_rows(w_star, "w_star")
    return w, w_star


def _check_k(k) -> int:
    return v.positive_int(k, "k")


def _norm_angle(w, w_star):
    """‖w‖, ‖w*‖, ‖w‖cos θ, ‖w‖sin θ and θ = atan2(‖w‖sin θ, ‖w‖cos θ) (autograd friendly away from θ ∈ {0, π})."""
    ws_norm = w_star.norm()
    ws_hat = w_star / ws_norm
    par = w @ ws_hat                                                  # ‖w‖ cos θ
    perp = (w - par[..., None] * ws_hat).norm(dim=-1)                 # ‖w‖ sin θ
    theta = torch.atan2(perp, par)
    return w.norm(dim=-1), ws_norm, par, perp, theta


def gaussian_loss(w, w_star, k: int = 1) -> torch.Tensor:
    """Population loss ℓ(w) for k i.i.d. N(0, I_p) patches with average pooling (SPEC §4 items 2 and 7):

    ℓ(w) = (1/2k)[‖w‖²/2 + ‖w*‖²/2 − 2g(w, w*)] + (k−1)/(4πk)(‖w‖ − ‖w*‖)²,
    g(w, w*) = ‖w‖‖w*‖(sin θ + (π − θ)cos θ)/(2π).

    ``w`` of shape (p,) gives a scalar, (R, p) gives (R,). Defined at w = 0 (ℓ(0) of Theorem 3.1's condition).
    """
    w, w_star = _check_pair(w, w_star)
    k = _check_k(k)
    wn, wsn, par, perp, theta = _norm_angle(w, w_star)
    g = wsn * (perp + (math.pi - theta) * par) / (2 * math.pi)
    return (wn ** 2 / 2 + wsn ** 2 / 2 - 2 * g) / (2 * k) + (k - 1) / (4 * math.pi * k) * (wn - wsn) ** 2


def gaussian_gradient(w, w_star, k: int = 1) -> torch.Tensor:
    """Population gradient ∇ℓ(w) for k i.i.d. N(0, I_p) patches with average pooling (SPEC §4 items 3 and 7):

    ∇ℓ(w) = (1/k)[w/2 − ((π − θ)w* + ‖w*‖ sin θ ŵ)/(2π)] + (k−1)/(2πk)(‖w‖ − ‖w*‖)ŵ   (Tian 2017 for k = 1).

    ``w`` of shape (p,) or (R, p); undefined at w = 0 (ValueError naming ``w``).
    """
    w, w_star = _check_pair(w, w_star)
    k = _check_k(k)
    v.nonzero_rows(w, "w")
    wn, wsn, _, perp, theta = _norm_angle(w, w_star)
    w_hat = w / wn[..., None]
    sin_t = perp / wn
    core = w / 2 - ((math.pi - theta)[..., None] * w_star + (wsn * sin_t)[..., None] * w_hat) / (2 * math.pi)
    return core / k + ((k - 1) / (2 * math.pi * k) * (wn - wsn))[..., None] * w_hat


# --------------------------------------------------------------------------------------------------------------
# Theorem 3.2: linear rate of gradient descent


def phi_t(w, w_star) -> torch.Tensor:
    """φ_t = arcsin(‖w − w*‖/‖w*‖) of Theorem 3.2, an upper bound on θ(w, w*) (SPEC §1.4).

    Needs ‖w − w*‖ < ‖w*‖ (ValueError naming ``w`` otherwise). ``w`` (p,) gives a scalar, (R, p) gives (R,).
    """
    w, w_star = _check_pair(w, w_star)
    ratio = (w - w_star).norm(dim=-1) / w_star.norm()
    if bool((ratio >= 1).any()):
        raise ValueError(f"w must satisfy ‖w − w_star‖ < ‖w_star‖ for φ_t (Theorem 3.2), got a ratio "
                         f"‖w − w_star‖/‖w_star‖ = {ratio.max().item():.4g}")
    return torch.arcsin(ratio)


def _numbers(**named):
    """Validate scalar-or-tensor arguments: returns (dict of tensors or floats, all_python_numbers)."""
    out, plain = {}, True
    for name, (x, low, strict) in named.items():
        if isinstance(x, bool):
            raise TypeError(f"{name} must be a real number or a float tensor, got {x!r}")
        if isinstance(x, numbers.Real):
            t = torch.tensor(float(x), dtype=torch.float64)
        else:
            plain = False
            t = v.tensor(x, name)
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} contains NaN or infinite values")
        bad = (t <= low) if strict else (t < low)
        if bool(bad.any()):
            raise ValueError(f"{name} must be {'>' if strict else '≥'} {low:g}, got {t[bad].reshape(-1)[0].item()!r}")
        out[name] = t
    return out, plain


def _finish(t: torch.Tensor, plain: bool, names: str = "the arguments"):
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"the result is not finite for these {names}: they are too large or too small "
                         "(the ratio overflows or divides by 0)")
    return float(t) if plain else t


def step_cap(gamma, L, beta):
    """Theorem 3.2's step-size cap γ/(2(L + 4β)²) (take γ, L at the φ that minimises it over [0, φ_t]).

    Arguments are numbers (returns a float) or broadcastable tensors (returns a tensor); γ ≥ 0, L ≥ 0, β ≥ 0 and
    L + 4β > 0.
    """
    a, plain = _numbers(gamma=(gamma, 0.0, False), L=(L, 0.0, False), beta=(beta, 0.0, False))
    denom = a["L"] + 4 * a["beta"]
    if bool((denom <= 0).any()):
        raise ValueError("L + 4·beta must be positive")
    return _finish(a["gamma"] / (2 * denom ** 2), plain, "gamma, L, beta")


def contraction_bound(eta, gamma):
    """Theorem 3.2's contraction factor 1 − ηγ/2: ‖w_{t+1} − w*‖² ≤ (1 − η_t γ(φ_t)/2)‖w_t − w*‖² (η ≥ 0, γ ≥ 0)."""
    a, plain = _numbers(eta=(eta, 0.0, False), gamma=(gamma, 0.0, False))
    return _finish(1 - a["eta"] * a["gamma"] / 2, plain, "eta, gamma")


def iterations_bound(gamma, L, beta, eps):
    """(L + β)²/γ² · ln(1/ε): Theorem 3.2's remark O((L(φ₀) + β)²/γ(φ₀)² log(1/ε)) *without* its absolute constant,
    so only ratios between distributions (or φ₀) are meaningful. Needs γ > 0, L ≥ 0, β ≥ 0, 0 < ε < 1."""
    a, plain = _numbers(gamma=(gamma, 0.0, True), L=(L, 0.0, False), beta=(beta, 0.0, False), eps=(eps, 0.0, True))
    if bool((a["eps"] >= 1).any()):
        raise ValueError(f"eps must lie in (0, 1), got {a['eps'].max().item()!r}")
    return _finish((a["L"] + a["beta"]) ** 2 / a["gamma"] ** 2 * torch.log(1 / a["eps"]), plain, "gamma, L, beta, eps")


# ==============================================================================================================
# ==============================================================================================================
# Part II: the convolutional filter (k patches per input)
#
# Assumptions 4.1 and 4.2, Theorem 4.1 (gradient descent) and Theorem 4.3 (closeness of patches); SPEC §1.3,
# §2.2, §6 T6–T8; chapters/conv_model.md, closeness.md, sgd.md and init.md. Everything below takes a sample Z of
# shape (n, k, p) with any k ≥ 1 (k = 1 is the one-neuron model of Part I) and never changes the Part I code above.
#
# Notation (SPEC §1.3). Per patch i: S(w,w*)_i = {wᵀZ_i ≥ 0, w*ᵀZ_i ≥ 0}, S(w,−w*)_i = {wᵀZ_i ≥ 0, w*ᵀZ_i < 0},
# S(−w,w*)_i = {wᵀZ_i < 0, w*ᵀZ_i ≥ 0}; Z_S(a,b) = (1/k) Σ_i Z_i 1{S(a,b)_i} (a p-vector per input) and
# Z_v = (1/k) Σ_i Z_i 1{vᵀZ_i ≥ 0}, so that Z_w = Z_S(w,w*) + Z_S(w,−w*) and Z_w* = Z_S(w,w*) + Z_S(−w,w*) exactly.
#
# The estimators follow the Part I conventions: ``phi`` a number or a 1-D array, ``n_directions`` random
# directions at angle φ (both directions for p = 2), ``seed``, and ``return_se`` with the batch-means plus
# cross-fitted error bar described in the module notes (for the non-symmetric cross moments the cross-fitted
# estimate evaluates the top singular pair uᵀTv chosen on the other batches). The same caveats apply: a finite
# set of directions can miss the extreme one for p > 2, and a min/max over noisy candidates is biased.
# ==============================================================================================================

CONV_MOMENT_KEYS = ("pos", "neg", "T1", "T1p", "T2", "T4", "ZwZw", "ZwZs")
"""Keys of :func:`conv_moments`, in order."""

# Each moment is E[a bᵀ] for two per-input vectors: P = Z_S(w,w*), N = Z_S(w,−w*), M = Z_S(−w,w*), W = Z_w,
# S = Z_w* (the last does not depend on w).
_CONV_PRODUCTS = {"pos": ("P", "P"), "neg": ("N", "N"), "T1": ("P", "N"), "T1p": ("N", "P"), "T2": ("P", "M"),
                  "T4": ("N", "M"), "ZwZw": ("W", "W"), "ZwZs": ("W", "S")}


def _conv_phi(phi, name: str, Z: torch.Tensor, **kw) -> tuple[torch.Tensor, bool]:
    """:func:`_check_phi` for Part II: a float tensor is checked in its own dtype (so a float32 π or π/2, which
    exceeds the float64 value, is accepted) and then cast to Z's dtype and device and clamped to the range."""
    dtype = phi.dtype if isinstance(phi, torch.Tensor) and phi.dtype in v.FLOAT_DTYPES else Z.dtype
    t, scalar = _check_phi(phi, name, dtype=dtype, device=Z.device, **kw)
    return t.to(Z.dtype).clamp(max=kw.get("high", math.pi)), scalar


def _check_conv_sample(Z) -> torch.Tensor:
    """Z of shape (n, k, p): n inputs of k patches of size p (k ≥ 1; an empty Z fails naming Z)."""
    return v.tensor(Z, "Z", ndim=3)


def _conv_sums(W: torch.Tensor, w_star: torch.Tensor, Z: torch.Tensor, keys, n_batches: int = 1):
    """Unnormalised Σ_n a bᵀ for each requested moment of ``_CONV_PRODUCTS``, per batch and per row of W.

    Returns ({key: (n_batches, M, p, p)}, counts (n_batches,)). The n inputs are split into ``n_batches``
    contiguous batches, each processed in chunks whose intermediates (indicators (c, k, M), vectors (c, M, p))
    hold at most about ``_CHUNK_ELEMENTS`` elements.
    """
    n, k, p = Z.shape
    M = W.shape[0]
    dtype, device = Z.dtype, Z.device
    need = sorted({name for key in keys for name in _CONV_PRODUCTS[key]})
    sums = {key: torch.zeros(n_batches, M, p, p, dtype=dtype, device=device) for key in keys}
    bounds = [round(b * n / n_batches) for b in range(n_batches + 1)]
    per_input = M * (len(need) * p + 4 * k) + 2 * k * p + 1
    chunk = max(1, _CHUNK_ELEMENTS // per_input)
    for b in range(n_batches):
        for start in range(bounds[b], bounds[b + 1], chunk):
            z = Z[start:min(start + chunk, bounds[b + 1])]                 # (c, k, p)
            act = z @ W.T >= 0                                             # (c, k, M): 1{wᵀZ_i ≥ 0}
            tea = (z @ w_star >= 0)[..., None]                             # (c, k, 1): 1{w*ᵀZ_i ≥ 0}
            masks = {"P": act & tea, "N": act & ~tea, "M": ~act & tea, "W": act}
            vec = {}
            for name in need:
                if name == "S":
                    vec[name] = (tea.to(dtype) * z).sum(dim=1)[:, None, :] / k             # (c, 1, p)
                else:
                    vec[name] = torch.einsum("ckm,ckp->cmp", masks[name].to(dtype), z) / k  # (c, M, p)
            for key in keys:
                a, c_ = _CONV_PRODUCTS[key]
                sums[key][b] += torch.einsum("cmp,cmq->mpq", vec[a], vec[c_].expand_as(vec[a]))
    counts = torch.tensor([bounds[b + 1] - bounds[b] for b in range(n_batches)], dtype=dtype, device=device)
    return sums, counts


def conv_moments(w, w_star, Z) -> dict:
    """The second moments of the convolutional model on a sample Z (n, k, p) (SPEC §1.3, Assumptions 4.1–4.2).

    Returns a dict of (p, p) matrices (or (m, p, p) stacks for ``w`` of shape (m, p)), each a mean over the n
    inputs:

    * ``"pos"`` = E[Z_S(w,w*) Z_S(w,w*)ᵀ] (γ and L of Assumption 4.1), ``"neg"`` = E[Z_S(w,−w*) Z_S(w,−w*)ᵀ] (β);
    * ``"T1"`` = E[Z_S(w,w*) Z_S(w,−w*)ᵀ], ``"T1p"`` = E[Z_S(w,−w*) Z_S(w,w*)ᵀ] = T1ᵀ,
      ``"T2"`` = E[Z_S(w,w*) Z_S(−w,w*)ᵀ], ``"T4"`` = E[Z_S(w,−w*) Z_S(−w,w*)ᵀ] (the cross moments of
      Assumption 4.2 and Theorem 4.1's proof);
    * ``"ZwZw"`` = E[Z_w Z_wᵀ] and ``"ZwZs"`` = E[Z_w Z_w*ᵀ], computed directly from Z_w and Z_w* (not from the
      others), so that ∇ℓ(w) = ZwZw·w − ZwZs·w* (see :func:`four_region_gradient`) is an independent check.

    Indicators use wᵀZ_i ≥ 0 and w*ᵀZ_i ≥ 0 as in :func:`filterlib.gradient`. With k = 1, "pos" and "neg" are
    Part I's A_{w,w*} and A_{w,−w*} and every cross moment is exactly 0; they are also exactly 0 when all k
    patches of every input are equal.
    """
    Z = _check_conv_sample(Z)
    w = _check_filters(w, Z)
    w_star = _check_teacher(w_star, Z)
    sums, _ = _conv_sums(w.reshape(-1, w.shape[-1]), w_star, Z, CONV_MOMENT_KEYS)
    n = Z.shape[0]
    return {key: (sums[key][0, 0] if w.dim() == 1 else sums[key][0]) / n for key in CONV_MOMENT_KEYS}


def four_region_gradient(w, w_star, Z) -> torch.Tensor:
    """The paper's decomposition of the gradient (SPEC §1.3, Theorem 4.1's proof), on a sample Z (n, k, p):

    ∇ℓ(w) = pos·(w − w*) + (T1 + T1p + neg)·w − (T2 + T1p + T4)·w*,

    with the moments of :func:`conv_moments`. On the same sample it equals :func:`filterlib.gradient` and
    E[Z_wZ_wᵀ]w − E[Z_wZ_w*ᵀ]w* up to round-off. Shape (p,) for ``w`` of shape (p,), (m, p) for (m, p).
    """
    Z = _check_conv_sample(Z)
    w = _check_filters(w, Z)
    w_star = _check_teacher(w_star, Z)
    M = conv_moments(w, w_star, Z)
    mv = lambda A, x: (A @ x[..., None])[..., 0]                          # batched matrix-vector product
    return (mv(M["pos"], w - w_star) + mv(M["T1"] + M["T1p"] + M["neg"], w)
            - mv(M["T2"] + M["T1p"] + M["T4"], w_star.expand_as(w)))


def _conv_candidates(Z, w_star, phis: torch.Tensor, n_directions: int, seed: int, n_batches: int, keys):
    """Batch sums of the requested moments for every (φ, direction) candidate: ({key: (B, q, m, p, p)}, counts).

    The candidates are those of Part I (:func:`directions_at_angle` with the same seed), so for k = 1 the
    convolutional estimators reproduce :func:`gamma`, :func:`L`, :func:`L_minus` and :func:`beta`.
    """
    p = Z.shape[-1]
    m = 2 if p == 2 else n_directions
    g = None if p == 2 else rng.generator(seed, Z.device)
    W = directions_at_angle(w_star, phis, m, generator=g).reshape(-1, p)
    sums, counts = _conv_sums(W, w_star, Z, keys, n_batches)
    return {key: s.reshape(n_batches, phis.shape[0], m, p, p) for key, s in sums.items()}, counts


def _conv_setup(Z, w_star, n_directions, seed, return_se, n_batches):
    Z = _check_conv_sample(Z)
    w_star = _check_teacher(w_star, Z)
    n_directions = v.positive_int(n_directions, "n_directions")
    seed = v.nonneg_int(seed, "seed")
    B = _check_batches(n_batches, Z, return_se)
    return Z, w_star, n_directions, seed, B


def _conv_estimate(key, lowest, Z, w_star, phi, n_directions, seed, return_se, n_batches):
    Z, w_star, n_directions, seed, B = _conv_setup(Z, w_star, n_directions, seed, return_se, n_batches)
    phis, scalar = _conv_phi(phi, "phi", Z)
    S, counts = _conv_candidates(Z, w_star, phis, n_directions, seed, B, [key])
    scale = torch.ones(S[key].shape[1:3], dtype=Z.dtype, device=Z.device)
    value, se = _extreme(S[key], counts, scale, lowest, return_se)
    if scalar:
        value, se = value[0], (se[0] if se is not None else None)
    return (value, se) if return_se else value


def conv_gamma(Z, w_star, phi, *, n_directions: int = 64, seed: int = 0, return_se: bool = False,
               n_batches: int = 10):
    """Monte-Carlo γ(φ) of Assumption 4.1: min over w at angle φ of λ_min(E[Z_S(w,w*) Z_S(w,w*)ᵀ]), on a sample
    Z (n, k, p) (chapters/conv_model.md). Arguments, return values and caveats as for the Part I :func:`gamma`,
    which this equals for k = 1 (same directions for the same seed)."""
    return _conv_estimate("pos", True, Z, w_star, phi, n_directions, seed, return_se, n_batches)


def conv_L(Z, w_star, phi, *, n_directions: int = 64, seed: int = 0, return_se: bool = False,
           n_batches: int = 10):
    """Monte-Carlo L(φ) of Assumption 4.1: max over w at angle φ of λ_max(E[Z_S(w,w*) Z_S(w,w*)ᵀ]).
    As :func:`conv_gamma`; equals the Part I :func:`L` for k = 1."""
    return _conv_estimate("pos", False, Z, w_star, phi, n_directions, seed, return_se, n_batches)


def conv_L_minus(Z, w_star, phi, *, n_directions: int = 64, seed: int = 0, return_se: bool = False,
                 n_batches: int = 10):
    """Monte-Carlo max over w at angle φ of λ_max(E[Z_S(w,−w*) Z_S(w,−w*)ᵀ]), the left side of Assumption 4.1's
    β-condition. As :func:`conv_gamma`; equals the Part I :func:`L_minus` for k = 1."""
    return _conv_estimate("neg", False, Z, w_star, phi, n_directions, seed, return_se, n_batches)


def conv_beta(Z, w_star, phis=None, *, n_directions: int = 64, seed: int = 0, return_se: bool = False,
              n_batches: int = 10):
    """Monte-Carlo β of Assumption 4.1: max over a grid of φ ∈ (0, π/2] of :func:`conv_L_minus`(φ)/φ.

    ``phis`` defaults to :func:`default_beta_grid` (16 angles from π/32 to π/2). As the Part I :func:`beta`,
    which this equals for k = 1; returns a 0-d tensor (and its error bar with ``return_se``).
    """
    Z, w_star, n_directions, seed, B = _conv_setup(Z, w_star, n_directions, seed, return_se, n_batches)
    grid = _grid(default_beta_grid(dtype=Z.dtype, device=Z.device) if phis is None else phis, Z)
    S, counts = _conv_candidates(Z, w_star, grid, n_directions, seed, B, ["neg"])
    S = S["neg"]
    q, m = S.shape[1], S.shape[2]
    S = S.reshape(B, 1, q * m, *S.shape[-2:])
    scale = (1 / grid).repeat_interleave(m)[None, :]
    value, se = _extreme(S, counts, scale, False, return_se)
    return (value[0], se[0]) if return_se else value[0]


def default_cross_grid(q_small: int = 8, q: int = 16, *, smallest: float = 2.0 ** -9, dtype=None,
                       device=None) -> torch.Tensor:
    """The φ grid used by :func:`L_cross` and :func:`mu`: ``q_small`` geometrically spaced angles from
    ``smallest`` (default 2⁻⁹ ≈ 0.002 rad) up to, not including, π/(2q), followed by :func:`default_beta_grid`(q)
    (π/(2q), …, π/2); 24 angles by default.

    Why the small angles: Assumption 4.2 must hold at every φ (Theorem 4.1's proof uses it at θ(w_t, w*) → 0), and
    for close patches cross_sum(φ)/φ is largest as φ → 0. There it tends to a limit set by the mass near w*'s
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


def _grid(phis, Z) -> torch.Tensor:
    """A φ grid in (0, π/2] (default :func:`default_cross_grid`), checked, as a 1-D tensor on Z's dtype/device."""
    if phis is None:
        return default_cross_grid(dtype=Z.dtype, device=Z.device)
    grid, _ = _conv_phi(phis, "phis", Z, high=math.pi / 2, open_low=True)
    return grid


def _cross_extreme(Ss, counts, scale, over_grid: bool, return_se: bool):
    """Σ_j max_m σ_max(T_j) per group, times ``scale`` (c,), maximised over the groups if ``over_grid``.

    ``Ss`` holds the batch sums (B, c, m, p, p) of T1, T2 and T4 for c angles and m directions each. The error
    bar mirrors :func:`_extreme`: sqrt(se_bm² + se_cf² + (value − crossfit)²), where the cross-fitted estimate
    picks, on the other B − 1 batches, the direction and the top singular pair (u, v) of each T_j (and the angle,
    if ``over_grid``) and evaluates uᵀ T_j v on the held-out batch.
    """
    n = counts.sum()
    B = Ss[0].shape[0]

    def total(matrices):                                                   # (…, c, m, p, p) per j → (…, c)
        return sum(torch.linalg.matrix_norm(T, ord=2).max(dim=-1).values for T in matrices) * scale

    full = total([S.sum(0) / n for S in Ss])                               # (c,)
    value = full.max() if over_grid else full
    if not return_se:
        return value, None
    cnt = counts.reshape(B, 1, 1, 1, 1)
    per_batch = total([S / cnt for S in Ss])                               # (B, c)
    if over_grid:
        per_batch = per_batch.max(dim=-1).values
    se_bm = per_batch.std(dim=0, unbiased=True) / math.sqrt(B)
    b_idx = torch.arange(B, device=Ss[0].device)[:, None]
    c_idx = torch.arange(Ss[0].shape[1], device=Ss[0].device)[None, :]
    train_tot, held_tot = 0, 0
    for S in Ss:
        U, sig, Vh = torch.linalg.svd((S.sum(0, keepdim=True) - S) / (n - cnt))
        best = sig[..., 0].argmax(dim=-1)                                  # (B, c): direction chosen without b
        u = U[b_idx, c_idx, best][..., :, 0]                               # (B, c, p)
        vv = Vh[b_idx, c_idx, best][..., 0, :]
        held = (S / cnt)[b_idx, c_idx, best]                               # (B, c, p, p)
        held_tot = held_tot + torch.einsum("bci,bcij,bcj->bc", u, held, vv)
        train_tot = train_tot + sig[..., 0].max(dim=-1).values
    held_tot, train_tot = held_tot * scale, train_tot * scale
    if over_grid:
        held_tot = held_tot[torch.arange(B, device=held_tot.device), train_tot.argmax(dim=-1)]
    crossfit = held_tot.mean(dim=0)
    se_cf = held_tot.std(dim=0, unbiased=True) / math.sqrt(B)
    return value, torch.sqrt(se_bm ** 2 + se_cf ** 2 + (value - crossfit) ** 2)


def cross_sum(Z, w_star, phi, *, n_directions: int = 64, seed: int = 0, return_se: bool = False,
              n_batches: int = 10):
    """Monte-Carlo left side of Assumption 4.2 at angle φ (chapters/conv_model.md, closeness.md):

    max_w σ_max(T1) + max_w σ_max(T2) + max_w σ_max(T4),  each maximum over w at angle φ to w*,

    with T1 = E[Z_S(w,w*) Z_S(w,−w*)ᵀ], T2 = E[Z_S(w,w*) Z_S(−w,w*)ᵀ], T4 = E[Z_S(w,−w*) Z_S(−w,w*)ᵀ] and σ_max the
    largest singular value (the matrices are not symmetric). ``phi`` in [0, π], a number or a 1-D array;
    arguments and return values as for :func:`gamma`. It is exactly 0 for k = 1 and for identical patches.
    """
    Z, w_star, n_directions, seed, B = _conv_setup(Z, w_star, n_directions, seed, return_se, n_batches)
    phis, scalar = _conv_phi(phi, "phi", Z)
    S, counts = _conv_candidates(Z, w_star, phis, n_directions, seed, B, ["T1", "T2", "T4"])
    scale = torch.ones(phis.shape[0], dtype=Z.dtype, device=Z.device)
    value, se = _cross_extreme([S["T1"], S["T2"], S["T4"]], counts, scale, False, return_se)
    if scalar:
        value, se = value[0], (se[0] if se is not None else None)
    return (value, se) if return_se else value


def L_cross(Z, w_star, phis=None, *, n_directions: int = 64, seed: int = 0, return_se: bool = False,
            n_batches: int = 10):
    """Monte-Carlo L_cross of Assumption 4.2: max over a grid of φ ∈ (0, π/2] of :func:`cross_sum`(φ)/φ.

    ``phis`` defaults to :func:`default_cross_grid` (8 small angles from ≈ 0.002 rad, then π/32, …, π/2), because
    for close patches the supremum is approached as φ → 0 (see there); pass ``default_beta_grid()`` to reproduce a
    grid that starts at π/32, which gives a much smaller value for close patches. The ratio's noise is amplified
    by 1/φ at small φ. Returns a 0-d tensor (and its error bar with ``return_se``, which includes the selection
    over the grid). L_cross = 0 when all patches of every input are equal (and for k = 1).
    """
    Z, w_star, n_directions, seed, B = _conv_setup(Z, w_star, n_directions, seed, return_se, n_batches)
    grid = _grid(phis, Z)
    S, counts = _conv_candidates(Z, w_star, grid, n_directions, seed, B, ["T1", "T2", "T4"])
    value, se = _cross_extreme([S["T1"], S["T2"], S["T4"]], counts, 1 / grid, True, return_se)
    return (value, se) if return_se else value


def close_patches_cross_limit(k: int, base_sigma: float = 1.0) -> float:
    """lim_{φ→0} cross_sum(φ)/φ for the close-patches law (:func:`filterlib.distributions.close_patches`) as its
    jitter σ² → 0 (but σ² > 0): (k − 1)/(2k) · (ρ(π/2) + ρ(−π/2)), with ρ the density of the base patch's signed
    angle to w* (:func:`filterlib.distributions.angular_mixture_density`). A lower bound on L_cross that does not
    shrink as the patches get closer (chapters/conv_model.md; derived there, checked against :func:`cross_sum`).

    Derivation (2-D unit patches, φ ≪ σ ≪ 1): S(w, −w*) is a wedge of width φ at w*'s boundary +π/2, hit by patch
    i with probability ρ(π/2)φ; given that, each other patch is on the agreeing side S(w, w*) with probability ½
    and all patches point along the boundary direction e, so T1 ≈ ρ(π/2)φ · k · (1/k)·((k − 1)/(2k)) · e eᵀ.
    T2 is the same at −π/2 and T4 needs patches π apart, so it vanishes. For identical patches (σ² = 0) every
    cross moment is 0: L_cross jumps from 0 to this value as soon as the patches differ.
    """
    from .distributions import angular_mixture_density

    k = v.positive_int(k, "k")
    base_sigma = v.positive_float(base_sigma, "base_sigma")
    density = angular_mixture_density(torch.tensor([math.pi / 2, -math.pi / 2], dtype=torch.float64), base_sigma).sum()
    return float((k - 1) / (2 * k) * density)


# --------------------------------------------------------------------------------------------------------------
# Theorem 4.1: gradient descent learns the filter


def conv_condition_holds(gamma, L_cross):
    """Theorem 4.1's condition γ(φ₀) > 6·L_cross: a bool for numbers (or 0-d tensors), a bool tensor otherwise."""
    a, plain = _numbers(gamma=(gamma, -math.inf, False), L_cross=(L_cross, 0.0, False))
    holds = a["gamma"] > 6 * a["L_cross"]
    return bool(holds) if holds.dim() == 0 else holds


def _conv_margin(a) -> torch.Tensor:
    """γ − 6·L_cross, which Theorem 4.1 needs positive (ValueError naming gamma and L_cross otherwise)."""
    g_, l_ = torch.broadcast_tensors(a["gamma"], a["L_cross"])
    margin = g_ - 6 * l_
    bad = margin <= 0
    if bool(bad.any()):
        raise ValueError(f"gamma must exceed 6·L_cross (Theorem 4.1's condition γ(φ₀) > 6 L_cross fails): got "
                         f"gamma = {g_[bad].reshape(-1)[0].item():.6g}, "
                         f"6·L_cross = {6 * l_[bad].reshape(-1)[0].item():.6g}")
    return margin


def conv_step_cap(gamma, L, beta, L_cross):
    """Theorem 4.1's step-size cap (γ − 6L_cross)/(2(L + 10L_cross + 4β)²) (take γ, L at the φ that minimises it
    over [0, φ_t]). Numbers give a float, broadcastable tensors a tensor; L, β, L_cross ≥ 0. Raises ValueError
    naming gamma and L_cross when γ ≤ 6·L_cross, where the theorem gives no step (see :func:`conv_condition_holds`).
    """
    a, plain = _numbers(gamma=(gamma, 0.0, False), L=(L, 0.0, False), beta=(beta, 0.0, False),
                        L_cross=(L_cross, 0.0, False))
    margin = _conv_margin(a)
    if bool(((a["L"] + 10 * a["L_cross"] + 4 * a["beta"]) <= 0).any()):
        raise ValueError("L + 10·L_cross + 4·beta must be positive")
    return _finish(margin / (2 * (a["L"] + 10 * a["L_cross"] + 4 * a["beta"]) ** 2), plain, "gamma, L, beta, L_cross")


def conv_contraction_bound(eta, gamma, L_cross):
    """Theorem 4.1's contraction factor 1 − η(γ − 6L_cross)/2 (η ≥ 0, L_cross ≥ 0):
    ‖w_{t+1} − w*‖² ≤ (1 − η_t(γ(φ_t) − 6L_cross)/2)‖w_t − w*‖². Returned as is: when γ ≤ 6L_cross it is ≥ 1 and
    the theorem promises nothing."""
    a, plain = _numbers(eta=(eta, 0.0, False), gamma=(gamma, -math.inf, False), L_cross=(L_cross, 0.0, False))
    return _finish(1 - a["eta"] * (a["gamma"] - 6 * a["L_cross"]) / 2, plain, "eta, gamma, L_cross")


def conv_iterations_bound(gamma, L, beta, L_cross, eps):
    """(L + 10L_cross + 4β)²/(γ − 6L_cross)² · ln(1/ε): Theorem 4.1's O(·) iteration count without its absolute
    constant (only ratios are meaningful). Needs γ > 6L_cross (ValueError naming gamma and L_cross), L, β,
    L_cross ≥ 0 and 0 < ε < 1."""
    a, plain = _numbers(gamma=(gamma, 0.0, False), L=(L, 0.0, False), beta=(beta, 0.0, False),
                        L_cross=(L_cross, 0.0, False), eps=(eps, 0.0, True))
    if bool((a["eps"] >= 1).any()):
        raise ValueError(f"eps must lie in (0, 1), got {a['eps'].max().item()!r}")
    margin = _conv_margin(a)
    return _finish((a["L"] + 10 * a["L_cross"] + 4 * a["beta"]) ** 2 / margin ** 2 * torch.log(1 / a["eps"]), plain,
                   "gamma, L, beta, L_cross, eps")


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
    Z_avg = (1/k) Σ_i Z_i (chapters/closeness.md). A 0-d tensor.

    A zero patch has no direction and is skipped; an input whose Z_avg is 0 raises ValueError naming Z. ρ is a
    maximum over the sample, so it grows with n toward the law's worst case.
    """
    Z = _check_conv_sample(Z)
    avg = Z.mean(dim=1)
    norms = avg.norm(dim=-1)
    if bool((norms == 0).any()):
        j = int((norms == 0).nonzero()[0])
        raise ValueError(f"Z has an input (index {j}) whose patch average Z_avg is 0, so θ(Z_i, Z_avg) is undefined")
    theta, _, nonzero = _angle_to(Z, (avg / norms[:, None])[:, None, :])
    return torch.where(nonzero, theta, torch.zeros_like(theta)).max()


def mu(Z, w_star, phis=None) -> torch.Tensor:
    """μ of Theorem 4.3 on a sample Z (n, k, p): the boundary-mass constant (chapters/closeness.md),

    μ = max over patch index i and over a grid of φ ∈ (0, π/2] of P(θ(Z_i, w*) ∈ [π/2 − φ, π/2 + φ]) / φ,

    with θ ∈ [0, π] the unsigned angle and P the fraction of the n inputs. ``phis`` defaults to
    :func:`default_cross_grid` (≈ 0.002 rad … π/2); at small φ the estimate is noisy (a count over φ). Since the
    band at φ = π/2 is everything, a grid reaching π/2 gives μ ≥ 2/π for any law. In the plane the paper states
    two one-sided conditions (signed angles near +π/2 and near −π/2), each ≤ μφ; the unsigned band is their
    union, so this μ is at least the paper's and at most twice it. Zero patches count as outside every band
    (they contribute nothing to any Z_S). A 0-d tensor.
    """
    Z = _check_conv_sample(Z)
    w_star = _check_teacher(w_star, Z)
    grid = _grid(phis, Z)
    _, dist, nonzero = _angle_to(Z, w_star / w_star.norm())                # (n, k)
    dist = torch.where(nonzero, dist, torch.full_like(dist, math.inf))
    sorted_dist = dist.T.contiguous().sort(dim=-1).values                  # (k, n)
    inside = torch.searchsorted(sorted_dist, grid.expand(Z.shape[1], -1).contiguous(), right=True)  # (k, q)
    return (inside.to(Z.dtype) / Z.shape[0] / grid).max()


def gamma_avg(Z, w_star, phi, *, n_directions: int = 64, seed: int = 0, return_se: bool = False,
              n_batches: int = 10):
    """γ_avg(φ) of Theorem 4.3: the one-neuron γ(φ) (Part I :func:`gamma`, Def. 3.1) of the averaged patch
    Z_avg = (1/k) Σ_i Z_i, i.e. ``gamma(Z.mean(1, keepdim=True), …)`` (Z_avg is not renormalised).
    Arguments and return values as for :func:`gamma`."""
    Z = _check_conv_sample(Z)
    phis, scalar = _conv_phi(phi, "phi", Z)
    return gamma(Z.mean(dim=1, keepdim=True), w_star, phis[0] if scalar else phis, n_directions=n_directions,
                 seed=seed, return_se=return_se, n_batches=n_batches)


def closeness_bounds(Z, w_star, phi, *, phis=None, n_directions: int = 64, seed: int = 0) -> dict:
    """Both sides of Theorem 4.3's two inequalities on a sample Z (n, k, p) (chapters/closeness.md):

    * ``"gamma"`` = :func:`conv_gamma`(φ), ``"gamma_avg"`` = :func:`gamma_avg`(φ), ``"rho"`` = :func:`rho` and
      ``"lower_bound"`` = gamma_avg − 4(1 − cos ρ): the theorem claims gamma ≥ lower_bound;
    * ``"L_cross"`` = :func:`L_cross` and ``"mu"`` = :func:`mu` on the grid ``phis`` (default
      :func:`default_cross_grid`), ``"upper_bound"`` = 3μ: the theorem claims L_cross ≤ upper_bound.

    The theorem assumes unit-norm patches. Values are tensors: 0-d, or shape (q,) for gamma, gamma_avg and
    lower_bound when ``phi`` is a 1-D array of q angles.
    """
    Z = _check_conv_sample(Z)
    w_star = _check_teacher(w_star, Z)
    kw = dict(n_directions=n_directions, seed=seed)
    out = {"gamma": conv_gamma(Z, w_star, phi, **kw), "gamma_avg": gamma_avg(Z, w_star, phi, **kw), "rho": rho(Z)}
    out["lower_bound"] = out["gamma_avg"] - 4 * (1 - torch.cos(out["rho"]))
    out["L_cross"] = L_cross(Z, w_star, phis, **kw)
    out["mu"] = mu(Z, w_star, phis)
    out["upper_bound"] = 3 * out["mu"]
    return out
