"""Input checks shared by every public filterlib function.

Each helper raises ``TypeError`` (wrong kind of object or dtype) or ``ValueError`` (wrong shape or value)
with a message that names the offending parameter and the form that was expected.
"""
from __future__ import annotations

import math
import numbers

import torch

FLOAT_DTYPES = (torch.float32, torch.float64)


def tensor(x, name: str, *, ndim=None, dtype=None, device=None, finite: bool = True) -> torch.Tensor:
    """Return ``x`` as a floating torch tensor after checking it.

    ``ndim`` is an int or a tuple of allowed ranks. Numpy arrays and Python lists are converted
    (to ``dtype`` or the filterlib default dtype); torch tensors must already be float32 or float64.
    """
    from . import config

    if isinstance(x, torch.Tensor):
        t = x
        if t.dtype not in FLOAT_DTYPES:
            raise TypeError(f"{name} must be a float32 or float64 tensor, got dtype {t.dtype}")
    else:
        try:
            t = torch.as_tensor(x, dtype=dtype or config.default_dtype())
        except (TypeError, ValueError, RuntimeError) as exc:
            raise TypeError(f"{name} must be a tensor or array of real numbers, got {type(x).__name__}") from exc
    if dtype is not None and t.dtype != dtype:
        t = t.to(dtype)
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


def nonzero_rows(w: torch.Tensor, name: str) -> None:
    """An angle needs a non-zero vector: fail if any row of ``w`` is zero."""
    norms = w.norm(dim=-1)
    if bool((norms == 0).any()):
        raise ValueError(f"{name} must be non-zero (an angle to it is needed), got a zero vector")


def positive_int(x, name: str) -> int:
    if isinstance(x, bool) or not isinstance(x, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer, got {x!r}")
    if x < 1:
        raise ValueError(f"{name} must be a positive integer, got {x}")
    return int(x)


def nonneg_int(x, name: str) -> int:
    if isinstance(x, bool) or not isinstance(x, numbers.Integral):
        raise TypeError(f"{name} must be a non-negative integer, got {x!r}")
    if x < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {x}")
    return int(x)


def positive_float(x, name: str) -> float:
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise TypeError(f"{name} must be a positive finite number, got {x!r}")
    x = float(x)
    if not math.isfinite(x) or x <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {x}")
    return x
