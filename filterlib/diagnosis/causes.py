"""Why γ is 0 or tiny, from what the diagnosis measured, and the change that would test it (chapters/diagnose.md).

A γ(φ₀) of 0 (a singular joint moment) or tiny says that some filter direction receives almost no gradient from the
patches on which student and teacher are both active. :func:`causes` names the causes it can check on the sample:

* a **dead teacher**: w* is active (w*ᵀz > 0) on under 1 % of patches, so the joint region S(w, w*) is nearly empty;
* **fewer images than p** in the convolutional view: n averaged patch vectors cannot span p directions, so its
  moments have rank ≤ n;
* **constant or blank patches**: the patches themselves span fewer than p directions (a pixel that never varies,
  blank backgrounds), or most of them are constant;
* **uncentred pixels**: the mean pixel is far from 0 compared with the pixels' spread, so every patch is close to a
  multiple of (1, …, 1) and the sign of wᵀz is set by the sum of w's entries;
* **pooling over many patches** (convolutional view only): single patches are well conditioned but the average of
  k patches per image is not.

Each cause is a dict {"cause", "evidence", "fix"}; :func:`activation_warnings` gives the warnings for a dead
(< 1 %) or linear (> 99 %) teacher or start, which every report shows.
"""
from __future__ import annotations

import torch

DEAD = 0.01                     # a teacher active on fewer patches than this is dead
LINEAR = 0.99                   # ... on more than this, linear (a ReLU that never switches off)
TINY = 1e-6                     # γ(φ₀)/L(φ₀) below this is "tiny"
RANK_TOL = 1e-12                # eigenvalues below this times the largest count as 0
UNCENTRED = 1.0                 # |mean pixel| above this many standard deviations is "uncentred"


def _pct(x: float) -> str:
    """A fraction as a percentage with enough digits to tell 0.01 % from 0 %."""
    if x == 0:
        return "0 %"
    pct = 100 * x
    return f"{pct:.2g} %" if pct < 1 or pct > 99 else f"{pct:.0f} %"


def activation_warnings(act: dict) -> list[str]:
    """Warnings for a teacher or start active on fewer than 1 % or more than 99 % of patches, from the fractions of
    the pipeline (chapters/diagnose.md)."""
    out = []
    for name, who in (("teacher", "the teacher w*"), ("start", "the start w₀")):
        f = act.get(f"{name}_active_fraction")
        if f is None:
            continue
        if f < DEAD:
            out.append(f"{who} is active on only {_pct(f)} of patches: a dead {name} (the ReLU is 0 on almost "
                       f"every patch)")
        elif f > LINEAR:
            out.append(f"{who} is active on {_pct(f)} of patches: a linear {name} (the ReLU almost never switches "
                       f"off)")
    return out


def activation_text(a: dict) -> str:
    """One line on where the teacher and the start are active (chapters/diagnose.md)."""
    if not a:
        return ""
    return (f"teacher active on {100 * a['teacher_active_fraction']:.3g} % of patches "
            f"({100 * a['teacher_active_image_fraction']:.3g} % of images), start on "
            f"{100 * a['start_active_fraction']:.3g} % ({100 * a['start_active_image_fraction']:.3g} % of images)")


def too_few_images(n: int, p: int) -> str:
    """The reason given for γ = 0 in the convolutional view when n < p images (chapters/diagnose.md)."""
    return (f"0: {n} images cannot determine a {p}-pixel filter (the convolutional view averages each image's "
            f"patches into one vector, so its moments have rank ≤ {n}); give at least p = {p} images")


def _tiny(est: dict) -> bool:
    g, L = est["gamma"].value, est["L"].value
    return g is not None and (g == 0 or (L is not None and L > 0 and g / L < TINY))


def causes(patch: dict, conv: dict, act: dict, setup: dict, Zp: torch.Tensor) -> list[dict]:
    """The measured causes of a γ(φ₀) that is 0 or tiny (one neuron or convolutional), each with its evidence and
    the change that would test it; [] when both γ are healthy. ``patch``/``conv``: the estimates, ``act``: the
    activation fractions, ``setup``: the Diagnosis set-up, ``Zp`` (m, 1, p): the one-neuron patches. Used by
    :func:`filterlib.diagnose` (chapters/diagnose.md)."""
    bad_patch, bad_conv = _tiny(patch), _tiny(conv)
    if not (bad_patch or bad_conv):
        return []
    which = " and ".join(v for v, bad in (("one-neuron", bad_patch), ("convolutional", bad_conv)) if bad)
    found = []
    f = act.get("teacher_active_fraction")
    pixels = setup.get("input", {}).get("pixels", {})
    mean, std = pixels.get("mean"), pixels.get("std")
    centred = setup.get("input", {}).get("center", False)
    uncentred = (not centred and mean is not None and std is not None and abs(mean) > UNCENTRED * std)
    if f is not None and f < DEAD:
        fix = "centre the images (--center, center=True)" if uncentred else "choose another teacher"
        found.append({"cause": "dead teacher",
                      "evidence": f"the teacher is active on only {_pct(f)} of patches, so the patches on which "
                                  f"student and teacher are both active are too few to carry variance in every "
                                  f"direction",
                      "fix": f"{fix}, or try another teacher (--teacher gabor, another --seed)"})
    n, p = setup["n_images"], setup["p"]
    if bad_conv and n < p:
        found.append({"cause": "fewer images than p",
                      "evidence": f"{n} images cannot determine a {p}-pixel filter in the convolutional view (its "
                                  f"moments have rank ≤ {n})",
                      "fix": f"give at least p = {p} images, or a smaller filter size"})
    X = Zp[:, 0, :]
    M = X.T @ X / max(X.shape[0], 1)
    ev = torch.linalg.eigvalsh(M)
    rank = int((ev > RANK_TOL * float(ev[-1].clamp_min(1e-300))).sum())
    spread = X.max(dim=1).values - X.min(dim=1).values
    scale = float(X.abs().max()) or 1.0
    constant = float((spread <= 1e-12 * scale).double().mean())
    if rank < p or constant > 0.5:
        found.append({"cause": "constant or blank patches",
                      "evidence": f"{_pct(constant)} of the patches are constant and their second moment has rank "
                                  f"{rank} of p = {p}, so some pixel combination never varies",
                      "fix": "crop away blank borders, use other images, or another filter size"})
    if uncentred and (f is None or f < DEAD or f > LINEAR or not found):
        s = setup.get("teacher_sum")
        tail = f" (the teacher's entries sum to {s:.3g})" if s is not None else ""
        found.append({"cause": "uncentred pixels",
                      "evidence": f"the mean pixel {mean:.3g} is {abs(mean) / std:.2g} standard deviations from 0, so "
                                  f"every patch is close to a multiple of (1, …, 1) and the sign of wᵀz is mostly "
                                  f"that of the sum of w's entries{tail}",
                      "fix": "centre the images (--center, center=True) and diagnose again"})
    gp, Lp, gc, Lc = patch["gamma"].value, patch["L"].value, conv["gamma"].value, conv["L"].value
    k = setup.get("k", 1)
    if bad_conv and not bad_patch and k > 1 and n >= p and gp and Lp and Lc:
        found.append({"cause": "pooling over many patches",
                      "evidence": f"single patches have γ/L = {gp / Lp:.3g} but the convolutional view has "
                                  f"{(gc or 0) / Lc:.3g}: averaging k = {k} patches per image shrinks the variance "
                                  f"left in the worst direction (by about k for independent patches)",
                      "fix": "a larger stride or smaller images (fewer patches per image), or more images"})
    if not found:
        found.append({"cause": "unexplained",
                      "evidence": f"the {which} joint moment is (nearly) singular, but the teacher is active on "
                                  f"{_pct(f) if f is not None else 'an unknown share'} of patches, there are enough "
                                  f"images and the patches span all p = {p} directions",
                      "fix": "try another filter size, another teacher or more images"})
    for c in found:
        c["gamma"] = which
    return found
