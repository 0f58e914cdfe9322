"""Second moments of the patches over the regions where student and teacher agree or disagree, for k ≥ 1 patches.

The one moment kernel of :mod:`filterlib.theory`: :func:`moment_sums` accumulates, over a sample Z of shape
(n, k, p), the batch sums of every moment E[a bᵀ] named in :data:`CONV_MOMENT_KEYS` for many candidate filters at
once; :func:`candidate_sums` does so for the filters at given angles to w* (the candidates of Definition 3.1's
min/max). Part I (one neuron, k = 1) and Part II (k patches) both use it. Also here: the moments as matrices
(:func:`A_matrices` of Part I, :func:`conv_moments` of Part II), the four-region form of the gradient
(:func:`four_region_gradient`), Lemma A.1's per-sample inequality (:func:`lemma_a1_violations`) and the filters
at an exact angle to w* (:func:`directions_at_angle`).

Notation (Section 4 of the paper). Per patch i: S(w,w*)_i = {wᵀZ_i ≥ 0, w*ᵀZ_i ≥ 0}, S(w,−w*)_i = {wᵀZ_i ≥ 0,
w*ᵀZ_i < 0}, S(−w,w*)_i = {wᵀZ_i < 0, w*ᵀZ_i ≥ 0}; Z_S(a,b) = (1/k) Σ_i Z_i 1{S(a,b)_i} (a p-vector per input)
and Z_v = (1/k) Σ_i Z_i 1{vᵀZ_i ≥ 0}, so that Z_w = Z_S(w,w*) + Z_S(w,−w*) and Z_w* = Z_S(w,w*) + Z_S(−w,w*).
For k = 1, "pos" and "neg" are Part I's A_{w,w*} and A_{w,−w*} and every cross moment is exactly 0.

Cost: one pass over the sample per call. For k = 1 the work is matrix products per chunk of samples (indicators
(M, c) times per-sample outer products (c, p²)) for M candidate filters; for k > 1 two einsums per chunk (the
vectors Z_S (c, M, p), then their outer products summed over the chunk). Chunks keep memory bounded.
"""
from __future__ import annotations

import contextlib
import functools
import math

import torch

from .. import _validate as v
from .. import rng
from ..distributions import angular_mixture_density
from . import _inputs

CONV_MOMENT_KEYS = ("pos", "neg", "T1", "T1p", "T2", "T4", "ZwZw", "ZwZs")
"""Keys of :func:`conv_moments` and :func:`moment_sums`, in order. Defined in chapters/conv_model.md."""

# Each moment is E[a bᵀ] for two per-input vectors: P = Z_S(w,w*), N = Z_S(w,−w*), M = Z_S(−w,w*), W = Z_w,
# S = Z_w* (the last does not depend on w).
_CONV_PRODUCTS = {"pos": ("P", "P"), "neg": ("N", "N"), "T1": ("P", "N"), "T1p": ("N", "P"), "T2": ("P", "M"),
                  "T4": ("N", "M"), "ZwZw": ("W", "W"), "ZwZs": ("W", "S")}

_CHUNK_ELEMENTS = 1 << 23  # bound on the elements of any intermediate of moment_sums (64 MiB in float64)


def moment_sums(W: torch.Tensor, w_star: torch.Tensor, Z: torch.Tensor, keys, n_batches: int = 1):
    """Unnormalised Σ_n a bᵀ for each moment named in ``keys`` (see :data:`CONV_MOMENT_KEYS`), per batch and per
    filter: the one moment kernel of Parts I and II. Used in chapters/smoothness.md and chapters/conv_model.md
    (through the estimators) and by the diagnose command (chapters/diagnose.md).

    ``W`` (M, p) holds the filters, ``w_star`` (p,) the teacher, ``Z`` (n, k, p) the sample; the inputs are
    not checked (the public callers check them). The n inputs are split into ``n_batches`` contiguous batches.
    Returns ({key: (n_batches, M, p, p)}, counts (n_batches,)). Divide by the counts for the means.

    For k = 1 the sums are matrix products, indicators (M, c) times the per-sample outer products (c, p²), and
    every cross moment ("T1", "T1p", "T2", "T4") is exactly 0; for k > 1 they are einsums over the vectors Z_S.
    """
    n_batches = v.positive_int(n_batches, "n_batches")
    if Z.shape[1] == 1:
        return _one_patch_sums(W, w_star, Z[:, 0, :], keys, n_batches)
    return _patch_sums(W, w_star, Z, keys, n_batches)


def _bounds(n: int, n_batches: int, like: torch.Tensor):
    """Start of each of ``n_batches`` contiguous batches of n (n_batches + 1 entries) and the batch sizes."""
    bounds = [round(b * n / n_batches) for b in range(n_batches + 1)]
    counts = torch.tensor([bounds[b + 1] - bounds[b] for b in range(n_batches)], dtype=like.dtype, device=like.device)
    return bounds, counts


def _one_patch_sums(W, w_star, X, keys, n_batches):
    """:func:`moment_sums` for k = 1, on X (n, p): two matrix products per chunk of samples."""
    n, p = X.shape
    M = W.shape[0]
    flat = {key: torch.zeros(n_batches, M, p * p, dtype=X.dtype, device=X.device) for key in keys}
    bounds, counts = _bounds(n, n_batches, X)
    chunk = max(1, _CHUNK_ELEMENTS // (M + p * p + 1))
    summed = [key for key in keys if key in ("pos", "neg", "ZwZw", "ZwZs")]      # cross moments stay 0
    for b in range(n_batches):
        for start in range(bounds[b], bounds[b + 1], chunk):
            x = X[start:min(start + chunk, bounds[b + 1])]
            act = (x @ W.T >= 0).T.to(X.dtype)                       # (M, c): 1{wᵀZ ≥ 0}
            pos = (x @ w_star >= 0).to(X.dtype)                      # (c,):   1{w*ᵀZ ≥ 0}
            outer = (x[:, :, None] * x[:, None, :]).reshape(-1, p * p)
            for key in summed:
                if key in ("pos", "ZwZs"):                           # Z_w Z_w*ᵀ = ZZᵀ 1{S(w, w*)} for one patch
                    flat[key][b] += (act * pos) @ outer
                elif key == "neg":
                    flat[key][b] += (act * (1 - pos)) @ outer
                else:
                    flat[key][b] += act @ outer
    return {key: s.reshape(n_batches, M, p, p) for key, s in flat.items()}, counts


def _patch_sums(W, w_star, Z, keys, n_batches):
    """:func:`moment_sums` for any k, by einsums over chunks whose intermediates (indicators (c, k, M), vectors
    (c, M, p)) hold at most about ``_CHUNK_ELEMENTS`` elements."""
    n, k, p = Z.shape
    M = W.shape[0]
    dtype, device = Z.dtype, Z.device
    need = sorted({name for key in keys for name in _CONV_PRODUCTS[key]})
    sums = {key: torch.zeros(n_batches, M, p, p, dtype=dtype, device=device) for key in keys}
    bounds, counts = _bounds(n, n_batches, Z)
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
    return sums, counts


def candidate_sums(Z, w_star, phis: torch.Tensor, n_directions: int, seed: int, n_batches: int, keys):
    """Batch sums of the moments ``keys`` for every candidate filter of the estimators: ``n_directions`` random
    directions at each angle of ``phis`` (both directions for p = 2), drawn by :func:`directions_at_angle` from
    ``seed``, the same directions at every angle. Used by the estimators of chapters/smoothness.md and
    chapters/conv_model.md and by the diagnose command (chapters/diagnose.md).

    ``Z`` (n, k, p), ``w_star`` and the 1-D tensor ``phis`` are not checked (the public callers check them).
    Returns ({key: (n_batches, q, m, p, p)}, counts (n_batches,)) for q angles and m directions.
    """
    p = Z.shape[-1]
    m = 2 if p == 2 else n_directions
    g = None if p == 2 else rng.generator(seed, Z.device)
    W = directions_at_angle(w_star, phis, m, generator=g).reshape(-1, p)  # (q·m, p)
    sums, counts = moment_sums(W, w_star, Z, keys, n_batches)
    return {key: s.reshape(n_batches, phis.shape[0], m, p, p) for key, s in sums.items()}, counts


def directions_at_angle(w_star, phi, m: int, *, generator: torch.Generator | None = None,
                        seed: int | None = None) -> torch.Tensor:
    """m unit filters w with θ(w, w*) = φ exactly (Def. 3.1's min/max runs over these). Defined in
    chapters/smoothness.md.

    w = cos φ ŵ* + sin φ u with u a unit vector ⟂ ŵ*: uniform on that sphere for p > 2 (drawn from ``generator``
    or ``seed``), and the two choices u = ±ŵ*⊥ (the +90° rotation), alternating, for p = 2 (no randomness; the
    generator/seed is then optional). ``phi`` a number gives shape (m, p); a 1-D array of q angles gives
    (q, m, p), with the *same* m vectors u at every φ (so estimates at one φ do not depend on the other φ's
    requested, and curves in φ are smooth). Dtype and device are those of ``w_star`` (as a tensor) or the
    filterlib default.
    """
    m = v.positive_int(m, "m")
    w_star = v.vector(w_star, "w_star", nonzero=True)
    phis, scalar = v.angles(phi, "phi", dtype=w_star.dtype, device=w_star.device)
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


def A_matrices(w, w_star, Z) -> tuple[torch.Tensor, torch.Tensor]:
    """Empirical (A_{w,w*}, A_{w,−w*}) of Theorem 3.1, Def. 3.1, Assumption 3.2 and Lemma A.1. Defined in
    chapters/one_neuron.md.

    A_{w,w*} = mean_n[Z Zᵀ 1{wᵀZ ≥ 0, w*ᵀZ ≥ 0}] and A_{w,−w*} = mean_n[Z Zᵀ 1{wᵀZ ≥ 0, w*ᵀZ < 0}] for Z of
    shape (n, 1, p). ``w`` of shape (p,) gives two (p, p) matrices; (m, p) gives two (m, p, p) stacks. On the
    same sample, the gradient of :func:`filterlib.loss` (k = 1) is A_{w,w*}(w − w*) + A_{w,−w*} w exactly.
    """
    Z = _inputs.sample(Z, one_patch=True)
    w = _inputs.filters(w, Z)
    w_star = _inputs.teacher(w_star, Z)
    sums, _ = moment_sums(w.reshape(-1, w.shape[-1]), w_star, Z, ("pos", "neg"))
    n = Z.shape[0]
    a_pos, a_neg = sums["pos"][0] / n, sums["neg"][0] / n
    if w.dim() == 1:
        return a_pos[0], a_neg[0]
    return a_pos, a_neg


def lemma_a1_violations(w, w_star, Z, *, tol: float = 1e-12) -> torch.Tensor:
    """Number of samples violating Lemma A.1's per-sample inequality, for each filter (derived in
    chapters/one_neuron.md):

    (w − w*)ᵀZ 1{wᵀZ ≥ 0}(σ(wᵀZ) − σ(w*ᵀZ)) ≥ 1{S(w, w*)}((w − w*)ᵀZ)²,

    whose mean over Z is ⟨∇ℓ(w), w − w*⟩ ≥ (w − w*)ᵀA_{w,w*}(w − w*). A sample counts as a violation when the left
    side falls below the right side by more than ``tol``·(1 + right side) (round-off allowance). Returns an int64
    tensor: shape () for ``w`` of shape (p,), (R,) for (R, p). The inequality holds for every sample, so the
    answer should be 0.
    """
    Z = _inputs.sample(Z, one_patch=True)
    w = _inputs.filters(w, Z)
    w_star = _inputs.teacher(w_star, Z)
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


def conv_moments(w, w_star, Z) -> dict:
    """The second moments of the convolutional model on a sample Z (n, k, p) (Assumptions 4.1–4.2). Defined in
    chapters/conv_model.md.

    Returns a dict of (p, p) matrices (or (m, p, p) stacks for ``w`` of shape (m, p)), each a mean over the n
    inputs:

    * ``"pos"`` = E[Z_S(w,w*) Z_S(w,w*)ᵀ] (γ and L of Assumption 4.1), ``"neg"`` = E[Z_S(w,−w*) Z_S(w,−w*)ᵀ] (β);
    * ``"T1"`` = E[Z_S(w,w*) Z_S(w,−w*)ᵀ], ``"T1p"`` = E[Z_S(w,−w*) Z_S(w,w*)ᵀ] = T1ᵀ,
      ``"T2"`` = E[Z_S(w,w*) Z_S(−w,w*)ᵀ], ``"T4"`` = E[Z_S(w,−w*) Z_S(−w,w*)ᵀ] (the cross moments of
      Assumption 4.2 and Theorem 4.1's proof);
    * ``"ZwZw"`` = E[Z_w Z_wᵀ] and ``"ZwZs"`` = E[Z_w Z_w*ᵀ], computed directly from Z_w and Z_w* (not from the
      others), so that ∇ℓ(w) = ZwZw·w − ZwZs·w* (see :func:`four_region_gradient`) is an independent check.

    Indicators use wᵀZ_i ≥ 0 and w*ᵀZ_i ≥ 0 as in :func:`filterlib.gradient`. With k = 1, "pos" and "neg" are
    Part I's A_{w,w*} and A_{w,−w*} (the same numbers as :func:`A_matrices`) and every cross moment is exactly 0;
    they are also exactly 0 when all k patches of every input are equal.
    """
    Z = _inputs.sample(Z)
    w = _inputs.filters(w, Z)
    w_star = _inputs.teacher(w_star, Z)
    sums, _ = moment_sums(w.reshape(-1, w.shape[-1]), w_star, Z, CONV_MOMENT_KEYS)
    n = Z.shape[0]
    return {key: (sums[key][0, 0] if w.dim() == 1 else sums[key][0]) / n for key in CONV_MOMENT_KEYS}


def four_region_gradient(w, w_star, Z) -> torch.Tensor:
    """The paper's decomposition of the gradient (Theorem 4.1's proof), on a sample Z (n, k, p). Defined in
    chapters/conv_model.md:

    ∇ℓ(w) = pos·(w − w*) + (T1 + T1p + neg)·w − (T2 + T1p + T4)·w*,

    with the moments of :func:`conv_moments`. On the same sample it equals :func:`filterlib.gradient` and
    E[Z_wZ_wᵀ]w − E[Z_wZ_w*ᵀ]w* up to round-off. Shape (p,) for ``w`` of shape (p,), (m, p) for (m, p).
    """
    Z = _inputs.sample(Z)
    w = _inputs.filters(w, Z)
    w_star = _inputs.teacher(w_star, Z)
    M = conv_moments(w, w_star, Z)
    mv = lambda A, x: (A @ x[..., None])[..., 0]                          # batched matrix-vector product
    return (mv(M["pos"], w - w_star) + mv(M["T1"] + M["T1p"] + M["neg"], w)
            - mv(M["T2"] + M["T1p"] + M["T4"], w_star.expand_as(w)))


# --------------------------------------------------------------------------------------------------------------
# The population moments of the close-patches law (Fig. 3(b)), by deterministic quadrature

_HALF_PI = math.pi / 2
_CLUSTER = (-12.0, -8.0, -5.0, -3.0, -1.5, 0.0, 1.5, 3.0, 5.0, 8.0, 12.0)   # panel breaks around each arc end (× σ)
_UNIFORM = 16                                # panels of the base angle's circle, before the clusters
_PANEL_NODES = 10                            # Gauss–Legendre nodes per panel


@contextlib.contextmanager
def _one_thread():
    """Run the block on one intra-op thread (restored afterwards): the quadrature is many small tensor operations,
    for which extra threads only add synchronisation, tens of times slower on a busy machine with few cores (as
    filterlib.kernel does for its workers)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@functools.lru_cache(maxsize=8)
def _gauss_legendre(m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss–Legendre nodes and weights on [−1, 1] in float64 (Golub–Welsch: eigenvalues of the Jacobi matrix)."""
    j = torch.arange(1, m, dtype=torch.float64)
    off = j / torch.sqrt(4 * j ** 2 - 1)
    x, vecs = torch.linalg.eigh(torch.diag(off, 1) + torch.diag(off, -1))
    return x, 2 * vecs[0] ** 2


@functools.lru_cache(maxsize=16)
def _jitter_table(sigma2: float):
    """The data of a cubic Hermite interpolant of G_j(y) = ∫_{−π}^{y} e^{ijδ} ρ(δ) dδ (j = 0, 1, 2), ρ the density
    of the jitter TN(0, σ²; [−π, π)), read by :func:`_jitter_antiderivative`: the grid of [−π, π] (dense, spacing
    σ/256, where ρ is not negligible) and, per cell, the rows [G(y_i), h G′(y_i), G(y_{i+1}), h G′(y_{i+1})] of the
    real and imaginary parts (cells × 4 × 6), plus G(π) (6,). Built once per σ² by 16-point Gauss–Legendre on
    every cell (exact to round-off), so the error is the interpolant's, ≲ 1e-12."""
    s = math.sqrt(sigma2)
    mass = math.erf(math.pi / (s * math.sqrt(2)))
    dense = min(10 * s, math.pi)
    h = min(s, 1.0) / 256
    pieces = [torch.linspace(-dense, dense, int(math.ceil(2 * dense / h)) + 1, dtype=torch.float64)]
    if dense < math.pi:                         # ρ < e^{−50}·max ρ outside ±10σ: a coarse grid is exact there
        coarse = torch.linspace(dense, math.pi, 17, dtype=torch.float64)[1:]
        pieces = [-coarse.flip(0)] + pieces + [coarse]
    y = torch.cat(pieces)
    density = lambda d: torch.exp(-0.5 * (d / s) ** 2) / (s * math.sqrt(2 * math.pi) * mass)
    j = torch.arange(3, dtype=torch.float64)
    x, wts = _gauss_legendre(16)
    mid, half = (y[1:] + y[:-1]) / 2, (y[1:] - y[:-1]) / 2
    d = mid[:, None] + half[:, None] * x                                          # (cells, 16)
    cell = ((half[:, None] * wts * density(d))[..., None] * torch.exp(1j * d[..., None] * j)).sum(1)   # (cells, 3)
    G = torch.cat([torch.zeros(1, 3, dtype=torch.complex128), torch.cumsum(cell, dim=0)])
    D = density(y)[:, None] * torch.exp(1j * y[:, None] * j)                      # G′ at the nodes
    real = lambda z: torch.view_as_real(z).reshape(z.shape[0], 6)
    G, D = real(G), real(D)
    hh = (y[1:] - y[:-1])[:, None]
    rows = torch.stack([G[:-1], hh * D[:-1], G[1:], hh * D[1:]], dim=1)          # (cells, 4, 6)
    return y, rows, G[-1]


def _jitter_antiderivative(y: torch.Tensor, table) -> torch.Tensor:
    """G_j(y) for any real y, as (*y.shape, 6): real and imaginary parts for j = 0, 1, 2. The antiderivative of
    e^{ijδ}ρ(δ) over the circle, extended so that G_j(y + 2π) = G_j(y) + G_j(π): the integral over an arc [a, b]
    (b ≥ a) of the patch angle is G_j(b) − G_j(a)."""
    grid, rows, total = table
    turns = torch.floor((y + math.pi) / (2 * math.pi))
    r = (y - 2 * math.pi * turns).reshape(-1)                                     # in [−π, π)
    i = torch.searchsorted(grid, r, right=True).clamp(1, grid.shape[0] - 1) - 1
    t = (r - grid[i]) / (grid[i + 1] - grid[i])
    t2 = t * t
    t3 = t2 * t
    basis = torch.stack([2 * t3 - 3 * t2 + 1, t3 - 2 * t2 + t, 3 * t2 - 2 * t3, t3 - t2], dim=1)   # (N, 4)
    val = (basis[:, :, None] * rows.index_select(0, i)).sum(dim=1)               # (N, 6)
    return val.reshape(*y.shape, 6) + turns[..., None] * total


def _close_patch_moments(theta: torch.Tensor, k: int, sigma2: float, base_sigma: float, keys) -> dict:
    """The moments ``keys`` (of :data:`CONV_MOMENT_KEYS`) of the close-patches law for filters at signed angles
    ``theta`` (R,) to w* = e1, as (R, 2, 2) float64 stacks. See :func:`close_patches_moments_at`."""
    s = math.sqrt(sigma2)
    R = theta.shape[0]
    one = torch.ones_like(theta)
    ends = torch.stack([-_HALF_PI * one, _HALF_PI * one, theta - _HALF_PI, theta + _HALF_PI], dim=1)   # (R, 4)
    # outer quadrature over the base angle α: composite Gauss–Legendre, panels clustered at the arc ends
    cluster = min(s, 0.25) * torch.tensor(_CLUSTER, dtype=torch.float64)
    uniform = -_HALF_PI + torch.arange(_UNIFORM + 1, dtype=torch.float64) * (2 * math.pi / _UNIFORM)
    pts = torch.remainder((ends[:, :, None] + cluster).reshape(R, -1) + _HALF_PI, 2 * math.pi) - _HALF_PI
    breaks = torch.cat([uniform.expand(R, -1), pts], dim=1).sort(dim=1).values
    x, wts = _gauss_legendre(_PANEL_NODES)
    mid, half = (breaks[:, 1:] + breaks[:, :-1]) / 2, (breaks[:, 1:] - breaks[:, :-1]) / 2
    alpha = (mid[..., None] + half[..., None] * x).reshape(R, -1)                 # (R, nodes)
    weight = (half[..., None] * wts).reshape(R, -1) * angular_mixture_density(alpha, base_sigma)
    G = _jitter_antiderivative(ends[:, :, None] - alpha[:, None, :], _jitter_table(sigma2))   # (R, 4, n, 6)
    sign = (theta >= 0)[:, None, None]
    # each region of one patch is an arc [a, b] of its angle; ends: 0 = −π/2, 1 = π/2, 2 = θ − π/2, 3 = θ + π/2
    arcs = {"P": ((2, 1), (0, 3)), "N": ((1, 3), (2, 0)), "M": ((0, 2), (3, 1)), "W": ((2, 3), (2, 3)),
            "S": ((0, 1), (0, 1))}
    need = set()
    for key in keys:
        need.update({"ZwZw": "W", "ZwZs": "WSP"}.get(key, "".join(_CONV_PRODUCTS[key])))
    c1, s1 = torch.cos(alpha), torch.sin(alpha)
    c2, s2 = c1 * c1 - s1 * s1, 2 * s1 * c1                                       # e^{iα}, e^{2iα}
    m, A = {}, {}
    for r in need:
        (a1, b1), (a0, b0) = arcs[r]
        I = torch.where(sign, G[:, b1] - G[:, a1], G[:, b0] - G[:, a0])           # (R, n, 6): ∫ over the arc
        c = I[..., 0]
        m[r] = torch.stack([c1 * I[..., 2] - s1 * I[..., 3], s1 * I[..., 2] + c1 * I[..., 3]], dim=-1)   # E[Z 1_r | α]
        q_re, q_im = c2 * I[..., 4] - s2 * I[..., 5], s2 * I[..., 4] + c2 * I[..., 5]
        A[r] = 0.5 * torch.stack([torch.stack([c + q_re, q_im], -1), torch.stack([q_im, c - q_re], -1)], -2)
    mean = lambda X: torch.einsum("rn,rn...->r...", weight, X)
    pair = lambda a, b: torch.einsum("rn,rnp,rnq->rpq", weight, m[a], m[b])
    f = (k - 1) / k
    # E[Z_a Z_bᵀ] = (1/k) E_α[E[ZZᵀ 1_{a∩b} | α]] + ((k − 1)/k) E_α[m_a m_bᵀ]: given α the patches are i.i.d.
    out = {}
    for key in keys:
        if key == "ZwZw":
            out[key] = mean(A["W"]) / k + f * pair("W", "W")
        elif key == "ZwZs":
            out[key] = mean(A["P"]) / k + f * pair("W", "S")
        elif key in ("pos", "neg"):
            r = "P" if key == "pos" else "N"
            out[key] = mean(A[r]) / k + f * pair(r, r)
        else:
            a, b = _CONV_PRODUCTS[key]
            out[key] = f * pair(a, b)                                    # disjoint regions: no single-patch term
    return out


def _close_patches_frame(w, w_star, k, sigma2, base_sigma):
    """Checked arguments of the close-patches functions: w (R, 2) float64 (and whether it was one filter), the
    rotation taking e1 to ŵ*, the signed angles θ(w, w*), k, σ², base σ."""
    w = v.filters(w, "w", p=2)
    w_star = v.vector(w_star, "w_star", p=2, nonzero=True)
    v.nonzero_rows(w, "w")
    k = v.positive_int(k, "k")
    sigma2 = v.positive_float(sigma2, "sigma2")
    base_sigma = v.positive_float(base_sigma, "base_sigma")
    single = w.dim() == 1
    W = w.reshape(-1, 2).to(torch.float64)
    what = w_star.to(torch.float64) / w_star.to(torch.float64).norm()
    rot = torch.stack([what, torch.stack([-what[1], what[0]])], dim=1)        # columns ŵ*, ŵ*⊥
    local = W @ rot                                                            # coordinates in the frame of w*
    theta = torch.atan2(local[:, 1], local[:, 0])
    return w, single, rot, theta, k, sigma2, base_sigma


def close_patches_moments_at(w, w_star, k: int, sigma2: float, *, base_sigma: float = 1.0) -> dict:
    """The population moments of :func:`conv_moments` for the close-patches law of Fig. 3(b)
    (:func:`filterlib.distributions.close_patches` with the same ``k``, ``sigma2`` and ``base_sigma``) at any
    filters ``w`` in the plane of any teacher ``w_star``, computed by deterministic quadrature instead of on a
    sample; all eight moments, ZwZw and ZwZs included. (:func:`filterlib.theory.close_patches_moments` gives five
    of them at an angle φ, for the constants; this one serves gradient descent and Theorem 4.1's proof, and its
    quadrature is an independent one.) Defined in chapters/conv_model.md.

    ``w`` (2,) or (R, 2), non-zero; ``w_star`` (2,), non-zero. Returns the dict of :data:`CONV_MOMENT_KEYS`,
    each a (2, 2) matrix (an (R, 2, 2) stack for R filters), in ``w``'s dtype.

    Method. Given the base angle α, the k patches are i.i.d. unit vectors at angle α + δ, δ ~ TN(0, σ²; [−π, π));
    each region of one patch (S(w, w*), S(w, −w*), S(−w, w*), and {wᵀZ ≥ 0}, {w*ᵀZ ≥ 0}) is an arc of its angle.
    So E[Z_a Z_bᵀ] = (1/k) E_α[E[ZZᵀ 1_{a∩b} | α]] + ((k − 1)/k) E_α[m_a(α) m_b(α)ᵀ] with m_a(α) = E[Z 1_a | α],
    and the inner expectations are differences of the antiderivatives of e^{ijδ}ρ(δ), j = 0, 1, 2, at the arc
    ends (tabulated once per σ² and read by a cubic Hermite interpolant, error ≲ 1e-12, so that a region of
    width 10⁻⁷ rad still has many correct digits); the outer expectation is composite Gauss–Legendre on
    [−π/2, 3π/2) with panels clustered around the arc ends at the jitter's scale. Accuracy about 1e-11 absolute
    (the moments are at most 1). ZwZw and ZwZs are computed from their own arcs, so ∇ℓ(w) = ZwZw·w − ZwZs·w*
    checks :func:`close_patches_gradient`. The moments depend on the direction of ``w`` only.
    """
    w, single, rot, theta, k, sigma2, base_sigma = _close_patches_frame(w, w_star, k, sigma2, base_sigma)
    with _one_thread():
        local = _close_patch_moments(theta, k, sigma2, base_sigma, CONV_MOMENT_KEYS)
    out = {key: (rot @ local[key] @ rot.T).to(w.dtype) for key in CONV_MOMENT_KEYS}
    return {key: val[0] for key, val in out.items()} if single else out


def _close_patches_step(w, w_star, k, sigma2, base_sigma):
    """∇ℓ(w) as (R, 2) float64, the moments pos, neg, T1, T1p, T2, T4 at w as (R, 2, 2) float64, the checked
    ``w`` and whether it was one filter (arguments as for :func:`close_patches_moments_at`)."""
    w, single, rot, theta, k, sigma2, base_sigma = _close_patches_frame(w, w_star, k, sigma2, base_sigma)
    local = _close_patch_moments(theta, k, sigma2, base_sigma, ("pos", "neg", "T1", "T2", "T4"))
    M = {key: rot @ val @ rot.T for key, val in local.items()}
    M["T1p"] = M["T1"].transpose(-1, -2)
    W = w.reshape(-1, 2).to(torch.float64)
    s = w_star.to(torch.float64).expand_as(W)
    mv = lambda A, x: (A @ x[..., None])[..., 0]
    g = mv(M["pos"], W - s) + mv(M["T1"] + M["T1p"] + M["neg"], W) - mv(M["T2"] + M["T1p"] + M["T4"], s)
    return g, M, w, single


def close_patches_gradient(w, w_star, k: int, sigma2: float, *, base_sigma: float = 1.0) -> torch.Tensor:
    """The population gradient ∇ℓ(w) of the close-patches law of Fig. 3(b), by the quadrature of
    :func:`close_patches_moments_at`, in the four-region form of :func:`four_region_gradient`:
    pos·(w − w*) + (T1 + T1p + neg)·w − (T2 + T1p + T4)·w*. Defined in chapters/conv_model.md.

    Near w* every term is computed with a small relative error (w − w* is formed first, and the regions
    S(w, ±w*) of width θ(w, w*) are integrated as such), so gradient descent can be followed to
    ‖w − w*‖ ≈ 10⁻⁸‖w*‖. ``w`` (2,) or (R, 2), non-zero; shape and dtype of ``w``.
    """
    with _one_thread():
        g, _, w, single = _close_patches_step(w, w_star, k, sigma2, base_sigma)
    g = g.to(w.dtype)
    return g[0] if single else g


def close_patches_descent(w0, w_star, k: int, sigma2: float, eta, *, base_sigma: float = 1.0,
                          steps: int = 10_000, tol: float = 0.0) -> dict:
    """Gradient descent w_{t+1} = w_t − η_t ∇ℓ(w_t) on the population loss of the close-patches law of Fig. 3(b)
    (:func:`close_patches_gradient`), from R starts at once, recording what Theorem 4.1's proof uses. Defined
    in chapters/conv_model.md.

    ``w0`` (R, 2) or (2,); ``eta`` a positive number, or a callable that maps φ_t = arcsin(‖w_t − w*‖/‖w*‖) (an
    (R,) float64 tensor, 1 where the ratio exceeds 1) to the steps η_t (R,) — e.g.
    :func:`filterlib.theory.conv_step_schedule`, Theorem 4.1's largest step. A run stops (its iterate stays
    fixed) once ‖w_t − w*‖ ≤ ``tol``·‖w*‖; the loop ends when every run has stopped, or after ``steps`` steps.
    Returns a dict of float64 tensors with T the number of steps taken:

    * ``"w"`` (T + 1, R, 2): the iterates; ``"eta"`` (T, R): the steps (0 once a run has stopped);
    * ``"gradient"`` (T, R, 2) and ``"moments"``, a dict of (T, R, 2, 2) stacks "pos", "neg", "T1", "T1p",
      "T2", "T4" at w_t (the moments of :func:`close_patches_moments_at`);
    * ``"active"`` (T, R) bool: whether run r took step t.
    """
    w = v.filters(w0, "w0", p=2).reshape(-1, 2).to(torch.float64)
    w_star = v.vector(w_star, "w_star", p=2, nonzero=True).to(torch.float64)
    steps = v.positive_int(steps, "steps")
    tol = float(tol)
    if not math.isfinite(tol) or tol < 0:
        raise ValueError(f"tol must be a finite number ≥ 0, got {tol}")
    if not callable(eta):
        eta = v.positive_float(eta, "eta")
    scale = w_star.norm()
    ws, etas, grads, actives = [w.clone()], [], [], []
    moments = {key: [] for key in ("pos", "neg", "T1", "T1p", "T2", "T4")}
    with _one_thread():
        for _ in range(steps):
            r = (w - w_star).norm(dim=1) / scale
            active = r > tol
            if not bool(active.any()):
                break
            g, M, _, _ = _close_patches_step(w, w_star, k, sigma2, base_sigma)
            step = eta(torch.arcsin(r.clamp(max=1.0))) if callable(eta) else torch.full_like(r, eta)
            step = torch.as_tensor(step, dtype=torch.float64).expand_as(r) * active
            w = w - step[:, None] * g
            ws.append(w.clone())
            etas.append(step)
            grads.append(g)
            actives.append(active)
            for key in moments:
                moments[key].append(M[key])
    empty = torch.zeros(0, w.shape[0], dtype=torch.float64)
    stack = lambda xs, *shape: torch.stack(xs) if xs else empty.reshape(0, w.shape[0], *shape)
    return {"w": torch.stack(ws), "eta": stack(etas), "gradient": stack(grads, 2),
            "moments": {key: stack(val, 2, 2) for key, val in moments.items()},
            "active": stack(actives).bool()}
