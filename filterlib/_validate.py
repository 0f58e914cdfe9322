"""The one validation vocabulary of filterlib: every public function checks its inputs through these helpers.

Modelled on scikit-learn's ``utils/validation.py`` (``check_scalar``, ``check_consistent_length``): each helper
raises ``TypeError`` (wrong kind of object or dtype) or ``ValueError`` (wrong shape or value) with a message that
names the offending parameter and the form that was expected. This module is a leaf: it imports nothing from
filterlib but :mod:`filterlib.config` (itself a leaf), so every other module may import it.

* Tensors: :func:`tensor`, :func:`all_finite`, :func:`same_float`, :func:`nonzero_rows`.
* Shapes that must agree: :func:`check_size` (a last dimension of p), :func:`filters` ((p,) or (R, p) next to a
  sample), :func:`vector` (a (p,) vector such as ``w_star``).
* Scalars: :func:`positive_int`, :func:`nonneg_int`, :func:`seed`, :func:`positive_float`, :func:`flag`; a dtype:
  :func:`float_dtype`.
* Angles and numbers of the theory: :func:`angles` (φ in an interval, a number or a 1-D array),
  :func:`numbers` (scalar-or-tensor arguments with a lower bound, the formulas of Theorems 3.2 and 4.1).
"""
from __future__ import annotations

import math
import numbers as _numbers_abc

import numpy as np
import torch

from . import config

FLOAT_DTYPES = (torch.float32, torch.float64)


# --------------------------------------------------------------------------------------------------------------
# Tensors


def tensor(x, name: str, *, ndim=None, dtype=None, device=None, finite: bool = True) -> torch.Tensor:
    """Return ``x`` as a floating torch tensor after checking it.

    ``ndim`` is an int or a tuple of allowed ranks. Torch tensors must already be float32 or float64. Anything else
    is read as a numpy array of real numbers (complex values are a TypeError, never silently cut to their real
    part) and converted to ``dtype``; without ``dtype`` a float32 or float64 numpy array keeps its own dtype and
    everything else (lists, numbers, integer arrays) gets the filterlib default (``FILTERLIB_DTYPE``). A conversion
    to float32 that overflows is a ValueError that names ``name`` and suggests float64.
    """
    if isinstance(x, torch.Tensor):
        t = x
        if t.dtype not in FLOAT_DTYPES:
            real = " (real numbers: complex values are not supported)" if t.is_complex() else ""
            raise TypeError(f"{name} must be a float32 or float64 tensor{real}, got dtype {t.dtype}")
    else:
        t = _from_array(x, name, dtype)
    if dtype is not None and t.dtype != dtype:
        t = _cast(t, dtype, name)
    if device is not None:
        t = t.to(device)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if t.dim() not in allowed:
            want = " or ".join(str(a) for a in allowed)
            raise ValueError(f"{name} must have {want} dimensions, got shape {tuple(t.shape)}")
    if t.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(t.shape)}")
    if finite and not all_finite(t):
        raise ValueError(f"{name} contains NaN or infinite values")
    return t


_NUMPY_FLOATS = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}


def _from_array(x, name: str, dtype) -> torch.Tensor:
    """``x`` (not a tensor) as a CPU tensor of ``dtype``, of its own float32/float64 numpy dtype, or of the default."""
    try:
        a = np.asarray(x)
    except Exception as exc:                                            # noqa: BLE001 (ragged lists, odd objects)
        raise TypeError(f"{name} must be a tensor or array of real numbers, got {type(x).__name__}") from exc
    if a.dtype.kind == "c":
        raise TypeError(f"{name} must hold real numbers, got complex values (dtype {a.dtype}); pass the real part "
                        f"or the modulus explicitly")
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a tensor or array of real numbers, got {type(x).__name__}"
                        + (f" of dtype {a.dtype}" if isinstance(x, (np.ndarray, np.generic)) else ""))
    own = _NUMPY_FLOATS.get(a.dtype) if isinstance(x, (np.ndarray, np.generic)) else None
    target = dtype or own or config.default_dtype()         # an invalid FILTERLIB_DTYPE raises its own error here
    wide = a.dtype.kind == "f" and a.dtype.itemsize > 4
    with np.errstate(over="ignore"):
        converted = np.asarray(a, dtype=np.float64 if target == torch.float64 or wide else np.float32, order="C")
    t = torch.from_numpy(converted)
    return _cast(t, target, name) if t.dtype != target else t


def _cast(t: torch.Tensor, dtype: torch.dtype, name: str) -> torch.Tensor:
    """``t`` in ``dtype``; a finite value that becomes ±inf (float64 → float32 beyond 3.4e38) is a ValueError."""
    out = t.to(dtype)
    if out.dtype.itemsize < t.dtype.itemsize and not all_finite(out) and all_finite(t):
        big = float(t.abs().max())
        raise ValueError(f"{name} has entries up to {big:.3g} in absolute value, beyond the range of {_name(dtype)} "
                         f"(±{torch.finfo(dtype).max:.3g}); use float64 (FILTERLIB_DTYPE=float64, or float64 "
                         f"arrays or tensors)")
    return out


def _name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def all_finite(t: torch.Tensor) -> bool:
    """True when ``t`` holds no NaN and no ±inf, in one read of ``t`` in the common case.

    A NaN or an infinity in ``t`` makes its sum NaN or ±inf, so a finite sum proves every entry finite. Only a
    non-finite sum, which overflow can also cause, needs the elementwise check (which makes a bool temporary
    the size of ``t``: 60 ms for the 115 MB patch tensor of 2000 MNIST-size images).
    """
    return bool(torch.isfinite(t.sum())) or bool(torch.isfinite(t).all())


def same_float(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    """Require the same dtype and device for two tensors that meet in one computation."""
    if a.dtype != b.dtype:
        raise TypeError(f"{name_a} has dtype {a.dtype} but {name_b} has dtype {b.dtype}; convert one of them")
    if a.device != b.device:
        raise ValueError(f"{name_a} is on {a.device} but {name_b} is on {b.device}; move them to one device")


def nonzero_rows(w: torch.Tensor, name: str, *, any_scale: bool = False) -> None:
    """An angle needs a non-zero vector: fail if any row of ``w`` is zero (entry by entry, so a row of tiny entries
    is not mistaken for zero). A caller that normalises with the plain norm ‖w‖ also needs that norm to be
    positive and finite: unless ``any_scale`` (the caller computes norms without under/overflow, as
    :func:`filterlib.model.angle` does), a row whose squared norm underflows to 0 or overflows is refused with
    advice to rescale it (or, in float32, to use float64)."""
    if not bool((w != 0).any(dim=-1).all()):
        raise ValueError(f"{name} must be non-zero (an angle to it is needed), got a zero vector")
    if any_scale:
        return
    norms = w.norm(dim=-1)
    bad = (norms == 0) | (norms == float("inf"))
    if bool(bad.any()):
        row = w.reshape(-1, w.shape[-1])[bad.reshape(-1).nonzero()[0, 0]]
        big = float(row.abs().max())
        how = "underflows to 0" if float(row.norm()) == 0 else "overflows"
        hint = "; or use float64" if w.dtype == torch.float32 else ""
        raise ValueError(f"{name} has entries up to {big:.3g} in absolute value, whose squared norm {how} in "
                         f"{_name(w.dtype)}: rescale it (divide it by its largest absolute entry){hint}")


# --------------------------------------------------------------------------------------------------------------
# Shapes that must agree


def check_size(t: torch.Tensor, p: int, name: str, *, of: str = "") -> None:
    """``t``'s last dimension must be ``p``: "NAME must have size p=P in its last dimension{of}". ``of`` says where
    p comes from, e.g. ``" (the patch size of Z)"``. A 1-D ``t`` is reported as "must have shape (p,) = (P,)"."""
    if t.shape[-1] == p:
        return
    if t.dim() == 1 and not of:
        raise ValueError(f"{name} must have shape (p,) = ({p},), got {tuple(t.shape)}")
    raise ValueError(f"{name} must have size p={p} in its last dimension{of}, got shape {tuple(t.shape)}")


def filters(w, name: str = "w", *, like: torch.Tensor | None = None, p: int | None = None, ndim=(1, 2),
            of: str = "") -> torch.Tensor:
    """One filter (p,) or a batch (R, p), checked against ``like`` (same dtype and device, p = its last size) or
    against ``p``. Numbers and arrays are converted to ``like``'s dtype."""
    dtype = like.dtype if like is not None and not isinstance(w, torch.Tensor) else None
    w = tensor(w, name, ndim=ndim, dtype=dtype)
    if like is not None:
        same_float(w, like, name, "Z" if like.dim() >= 3 else "w_star")
        p = like.shape[-1]
    if p is not None:
        check_size(w, p, name, of=of)
    return w


def vector(x, name: str = "w_star", *, like: torch.Tensor | None = None, p: int | None = None,
           nonzero: bool = False, like_name: str = "Z", any_scale: bool = False) -> torch.Tensor:
    """A single (p,) vector such as the teacher ``w_star``, checked against ``like`` (dtype, device and p = its last
    size; named ``like_name`` in messages) or ``p``; with ``nonzero`` it must not be 0 (an angle to it is needed;
    ``any_scale`` as in :func:`nonzero_rows`).
    Numbers and arrays are converted to ``like``'s dtype."""
    dtype = like.dtype if like is not None and not isinstance(x, torch.Tensor) else None
    x = tensor(x, name, ndim=1, dtype=dtype)
    if like is not None:
        same_float(x, like, name, like_name)
        p = like.shape[-1]
    if p is not None:
        check_size(x, p, name)
    if nonzero:
        nonzero_rows(x, name, any_scale=any_scale)
    return x


# --------------------------------------------------------------------------------------------------------------
# Scalars


def positive_int(x, name: str) -> int:
    if isinstance(x, bool) or not isinstance(x, _numbers_abc.Integral):
        raise TypeError(f"{name} must be a positive integer, got {x!r}")
    if x < 1:
        raise ValueError(f"{name} must be a positive integer, got {x}")
    return int(x)


def nonneg_int(x, name: str) -> int:
    if isinstance(x, bool) or not isinstance(x, _numbers_abc.Integral):
        raise TypeError(f"{name} must be a non-negative integer, got {x!r}")
    if x < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {x}")
    return int(x)


SEED_MAX = 2**64 - 1
"""The largest seed a ``torch.Generator`` accepts (an unsigned 64-bit integer)."""


def seed(x, name: str = "seed") -> int:
    """A seed for ``torch.Generator.manual_seed``: an integer in [0, 2**64 − 1]."""
    x = nonneg_int(x, name)
    if x > SEED_MAX:
        raise ValueError(f"{name} must be an integer from 0 to 2**64 − 1 = {SEED_MAX}, got {x}")
    return x


def positive_float(x, name: str) -> float:
    if isinstance(x, bool) or not isinstance(x, _numbers_abc.Real):
        raise TypeError(f"{name} must be a positive finite number, got {x!r}")
    x = float(x)
    if not math.isfinite(x) or x <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {x}")
    return x


def flag(x, name: str) -> bool:
    """A strict bool (``1`` or ``"yes"`` is refused, so a misplaced positional argument is caught)."""
    if not isinstance(x, bool):
        raise TypeError(f"{name} must be True or False, got {x!r}")
    return x


def float_dtype(dtype, name: str = "dtype") -> torch.dtype:
    """``dtype`` itself (float32 or float64), or the filterlib default (``FILTERLIB_DTYPE``) for None."""
    dtype = dtype or config.default_dtype()
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be torch.float32 or torch.float64, got {dtype}")
    return dtype


# --------------------------------------------------------------------------------------------------------------
# Angles and the numbers of the theory


def angles(phi, name: str = "phi", *, dtype=None, device=None, low: float = 0.0, high: float = math.pi,
           open_low: bool = False) -> tuple[torch.Tensor, bool]:
    """Angles φ in radians: returns (a 1-D tensor, whether ``phi`` was a single number).

    ``phi`` is a number or a 1-D array or tensor; every value must lie in [low, high] ((low, high] with
    ``open_low``). A float tensor is checked in its own dtype (so a float32 π, which exceeds the float64 value, is
    accepted), then cast to ``dtype`` and ``device`` and clamped to ``high``. ``dtype=None`` keeps a float tensor's
    dtype, reads a numpy float64 array as float64 and uses the filterlib default otherwise; ``device=None`` keeps
    a tensor's device.
    """
    if isinstance(phi, bool):
        raise TypeError(f"{name} must be a number or a 1-D array of angles in radians, got {phi!r}")
    own = None
    if isinstance(phi, torch.Tensor) and phi.dtype in FLOAT_DTYPES:
        own = phi.dtype
    elif str(getattr(phi, "dtype", "")) == "float64":                  # numpy arrays and numpy scalars
        own = torch.float64
    target = dtype or own or config.default_dtype()
    t = tensor(phi, name, ndim=(0, 1), dtype=None if isinstance(phi, torch.Tensor) else (own or target))
    scalar = t.dim() == 0
    t = t.reshape(-1)
    bad = (t <= low) if open_low else (t < low)
    bad = bad | (t > high * (1 + 8 * torch.finfo(t.dtype).eps))        # float32(π) > π is still accepted
    if bool(bad.any()):
        interval = f"({low:g}, {high:.6g}]" if open_low else f"[{low:g}, {high:.6g}]"
        raise ValueError(f"{name} must lie in {interval} (radians), got {t[bad][0].item()!r}")
    t = t.to(dtype=target, device=device if device is not None else t.device)
    return t.clamp(max=high), scalar


def numbers(**named) -> tuple[dict, bool]:
    """Scalar-or-tensor arguments of a formula, each given as ``name=(value, low, strict)``: the value must be
    finite and ≥ low (> low when ``strict``). Returns ({name: tensor}, whether every value was a Python number);
    numbers become float64 0-d tensors, so a formula can return a float for numbers and a tensor otherwise."""
    out, plain = {}, True
    for name, (x, low, strict) in named.items():
        if isinstance(x, bool):
            raise TypeError(f"{name} must be a real number or a float tensor, got {x!r}")
        if isinstance(x, _numbers_abc.Real):
            t = torch.tensor(float(x), dtype=torch.float64)
        else:
            plain = False
            t = tensor(x, name)
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} contains NaN or infinite values")
        bad = (t <= low) if strict else (t < low)
        if bool(bad.any()):
            raise ValueError(f"{name} must be {'>' if strict else '≥'} {low:g}, got {t[bad].reshape(-1)[0].item()!r}")
        out[name] = t
    return out, plain
