"""Is my filter easy to learn? The paper's constants measured on a user's own images (chapters/diagnose.md).

:func:`diagnose` (exported as :func:`filterlib.diagnose`) cuts a stack of images (N, H, W) into patches, estimates
the constants of Du, Lee & Tian (2018) for a teacher filter w*, checks the conditions of Theorems 3.2 and 4.1,
computes the largest step each theorem allows and its predicted number of iterations, then runs gradient descent
from ‖w₀ − w*‖ = sin(φ₀)‖w*‖ on the same patches and reports the measured contraction per step next to the
theorem's bound. It returns a :class:`Diagnosis` with :meth:`~Diagnosis.table` (readable text) and
:meth:`~Diagnosis.to_dict` (JSON-ready). The command line ``python -m filterlib diagnose IMAGES --filter-size 5``
wraps it (:mod:`filterlib.__main__`; files are read by :mod:`filterlib.data.files`).

The API, by module:

* :mod:`~filterlib.diagnosis.pipeline`: :func:`diagnose`, a short list of stages with their progress labels.
* :mod:`~filterlib.diagnosis.results`: the result types :class:`Estimate`, :class:`Condition`,
  :class:`Guarantee`, :class:`Run`, :class:`Diagnosis` and their rendering.
* :mod:`~filterlib.diagnosis.guarantees`: Theorem 3.2 and 4.1 guarantees, the bounds a run is compared with,
  Theorem 4.3's closeness conditions and the verdict.
* :mod:`~filterlib.diagnosis.runs`: gradient-descent runs and the fit of their rate.
* :mod:`~filterlib.diagnosis.causes`: the activation warnings and the measured causes of a γ that is 0 or tiny.
* :mod:`~filterlib.diagnosis.sweep`: :func:`diagnose_sweep` and :class:`Sweep`, one diagnosis per filter size and
  stride.

Two views of the same patches, and which theorem each number belongs to:

* **patch** (one neuron, k = 1): every patch, from any position of any image, is its own example. Definition 3.1
  γ(φ), L(φ) and Assumption 3.2 β are estimated on ``n_patches`` patches drawn from all positions; Theorem 3.2
  (step cap γ/(2(L + 4β)²), contraction 1 − ηγ/2, O((L + β)²/γ² log 1/ε) iterations) is the guarantee for
  training one neuron on them. These are the numbers that say how *smooth* the patch distribution is.
* **conv** (the convolutional model, k patches per image, average pooling): Assumption 4.1 γ(φ), L(φ), β of the
  patch averages Z_S, Assumption 4.2 L_cross, Theorem 4.3's ρ, μ and γ_avg, and Theorem 4.1 (condition
  γ(φ₀) > 6 L_cross, step cap (γ − 6L_cross)/(2(L + 10L_cross + 4β)²), contraction 1 − η(γ − 6L_cross)/2).
  This is the model the user trains. With k = 1 (images as large as the filter) both views coincide.

Where a theorem's condition fails it gives no step and no bound: the fields are ``None`` with a ``reason``, never an
exception. Gradient descent is then run with the smoothness-only step 1/(max L + 4β), which no theorem covers
(labelled as such), or with a step the user passes as ``eta``; for the convolutional model a given ``eta`` below
Theorem 3.2's cap evaluated on the conv constants gets that formula's bound 1 − ηγ/2, labelled a heuristic.

Estimator caveats (see :mod:`filterlib.theory`): γ is a minimum and L, β, L_cross maxima over *all* directions at
angle φ; for p > 2 the estimators try ``n_directions`` random ones, which can miss the extreme direction for laws
that are not rotation invariant (γ biased up, L, β, L_cross down). Error bars (``se``) cover sampling noise and the
min/max selection bias, not a missed direction. The constants are those of the *sample* (the empirical law of the
chosen images), which is also what gradient descent runs on, so the theorems apply to that run exactly up to
these estimation errors. Iteration counts: ``iterations_O`` is the theorem's O(·) term *without* its unknown
absolute constant (compare it between data sets, not with step counts); ``iterations`` is the number of steps the
theorem's contraction bound needs, at the step it allows, to go from sin φ₀ to ε (relative distance).

Defaults (``n_images=200``, ``n_patches=10_000``, ``n_directions=16``, ``steps=300``) make 200 MNIST images with a
5×5 filter (k = 576 patches each) take a few seconds on one CPU core.
"""
from .pipeline import STAGES, diagnose
from .results import Condition, Diagnosis, Estimate, Guarantee, Run
from .sweep import Sweep, diagnose_sweep

__all__ = ["Condition", "Diagnosis", "Estimate", "Guarantee", "Run", "STAGES", "Sweep", "diagnose",
           "diagnose_sweep"]
