"""Steps to a target distance from a contraction per step: shared by the guarantees and the report of
:func:`filterlib.diagnose` (chapters/diagnose.md)."""
from __future__ import annotations

import math


def iterations_to(contraction, start: float, eps: float):
    """Steps for a squared-distance contraction ``contraction`` per step to take the relative distance ``start`` to
    ``eps`` (None unless 0 < contraction < 1). Used by :func:`filterlib.diagnose` (chapters/diagnose.md)."""
    if contraction is None or not 0 < contraction < 1:
        return None
    if eps >= start:
        return 0.0
    return math.ceil(2 * math.log(eps / start) / math.log(contraction))
