"""Steps to a target distance from a contraction per step: shared by the guarantees and the report of
:func:`filterlib.diagnose` (chapters/diagnose.md)."""
from __future__ import annotations

import math


def iterations_to(contraction, start: float, eps: float, *, shrink=None):
    """Steps for a squared-distance contraction ``contraction`` per step to take the relative distance ``start`` to
    ``eps`` (None unless 0 < contraction < 1). ``shrink`` = 1 − contraction, when known on its own, keeps the count
    finite where the contraction rounds to 1 (a step far below the cap: 1 − 1e-17 is 1.0 in float64). Used by
    :func:`filterlib.diagnose` (chapters/diagnose.md)."""
    if shrink is not None and 0 < shrink < 1:
        log_c = math.log1p(-shrink)
    elif contraction is not None and 0 < contraction < 1:
        log_c = math.log(contraction)
    else:
        return None
    if eps >= start:
        return 0.0
    return math.ceil(2 * math.log(eps / start) / log_c)


def rate(contraction) -> float | None:
    """−ln c for a contraction factor c > 0 of ‖w_t − w*‖² per step (larger is faster; 0.0, not −0.0, for c = 1);
    None otherwise. The rate columns of the report and of the sweep of :func:`filterlib.diagnose`
    (chapters/diagnose.md)."""
    if contraction is None or not contraction > 0:
        return None
    return -math.log(contraction) + 0.0
