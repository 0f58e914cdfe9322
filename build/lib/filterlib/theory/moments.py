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

import torch

from .. import _validate as v
from .. import rng
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
