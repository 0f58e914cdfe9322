"""INTERIM (deleted when filterlib.theory.constants lands): the contract of theory.constants for the two calls of
the diagnosis, computed exactly as the diagnosis did before, with theory's private helpers."""
import torch

from .. import theory


def constants(Z, w_star, phis=None, *, which=("gamma", "L"), beta_phis=None, cross_phis=None, n_directions=64,
              seed=0, return_se=False, n_batches=10):
    assert beta_phis is None and cross_phis is None
    B = n_batches if return_se else 1
    out = {}
    if Z.shape[1] == 1 and "L_cross" not in which:                       # the patch view: Part I
        S, counts = theory._candidates(Z, w_star, phis, n_directions, seed, B, "gamma")
        ones = torch.ones(S.shape[1], S.shape[2], dtype=S.dtype)
        out["gamma"] = theory._extreme(S, counts, ones, True, return_se)
        out["L"] = theory._extreme(S, counts, ones, False, return_se)
        b = theory.beta(Z, w_star, n_directions=n_directions, seed=seed, return_se=return_se, n_batches=n_batches)
        out["beta"] = b if return_se else (b, None)
    else:
        S, counts = theory._conv_candidates(Z, w_star, phis, n_directions, seed, B, ["pos"])
        ones = torch.ones(S["pos"].shape[1], S["pos"].shape[2], dtype=Z.dtype)
        out["gamma"] = theory._extreme(S["pos"], counts, ones, True, return_se)
        out["L"] = theory._extreme(S["pos"], counts, ones, False, return_se)
        del S
        cross = theory.default_cross_grid(dtype=Z.dtype)
        bgrid = theory.default_beta_grid(dtype=Z.dtype)
        nb = bgrid.shape[0]
        assert torch.allclose(cross[-nb:], bgrid)
        S, counts = theory._conv_candidates(Z, w_star, cross, n_directions, seed, B, ["neg", "T1", "T2", "T4"])
        m, p = S["neg"].shape[2], Z.shape[-1]
        neg = S["neg"][:, -nb:].reshape(S["neg"].shape[0], 1, nb * m, p, p)
        bc, bc_se = theory._extreme(neg, counts, (1 / bgrid).repeat_interleave(m)[None, :], False, return_se)
        out["beta"] = (bc[0], None if bc_se is None else bc_se[0])
        out["L_cross"] = theory._cross_extreme([S["T1"], S["T2"], S["T4"]], counts, 1 / cross, True, return_se)
    return {k: out[k] for k in which} if return_se else {k: out[k][0] for k in which}
