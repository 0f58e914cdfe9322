"""The theory of the paper on a sample: moments, the constants γ, L, β, L_cross, ρ, μ and the bounds built on them.

Part I (one neuron, a sample Z of shape (n, 1, p)) and Part II (the convolutional filter, Z of shape (n, k, p),
any k ≥ 1) share one moment kernel and one estimator path; for k = 1 the Part II estimators equal the Part I ones.
Call everything through this package (``theory.gamma(...)``); the modules are:

moments
    The moment kernel and the moments as matrices: :func:`moment_sums`, :func:`candidate_sums`,
    :data:`CONV_MOMENT_KEYS`, :func:`directions_at_angle`, :func:`A_matrices` (Theorem 3.1),
    :func:`lemma_a1_violations` (Lemma A.1), :func:`conv_moments` and :func:`four_region_gradient` (Section 4); the
    population moments, gradient and gradient descent of the close-patches law by quadrature,
    :func:`close_patches_moments_at`, :func:`close_patches_gradient`, :func:`close_patches_descent`.
extremes
    :func:`extreme`: the min/max over candidate filters of an eigenvalue or singular value, with its error bar.
estimators
    Monte-Carlo estimates with error bars, and the estimator notes to read before quoting one:
    :func:`constants` (several constants from one pass), Part I :func:`gamma`, :func:`L`, :func:`L_minus`,
    :func:`beta` (Definition 3.1, Assumption 3.2), Part II :func:`conv_gamma`, :func:`conv_L`,
    :func:`conv_L_minus`, :func:`conv_beta`, :func:`cross_sum`, :func:`L_cross` (Assumptions 4.1 and 4.2),
    the grids :func:`default_beta_grid` and :func:`default_cross_grid`, and Theorem 4.3's :func:`rho`,
    :func:`mu`, :func:`gamma_avg`, :func:`closeness_bounds`.
closed_forms
    Gaussian patches and close patches (derived in the book): :data:`GAUSSIAN_BETA`, :func:`gaussian_gamma`,
    :func:`gaussian_L`, :func:`gaussian_L_minus`, :func:`gaussian_loss`, :func:`gaussian_gradient`,
    :func:`gaussian_conv_constants`, :func:`close_patches_cross_limit`.
quadrature
    The constants of the close-patches law computed deterministically on the circle (no sampling):
    :func:`close_patches_moments`, :func:`close_patches_gamma`, :func:`close_patches_L`,
    :func:`close_patches_L_minus`, :func:`close_patches_cross_sum`, :func:`close_patches_small_angle_limits`,
    :func:`close_patches_L_cross`, :func:`close_patches_beta`, :func:`close_patches_band_mass` (Theorem 4.3's μ).
bounds
    Theorems 3.2, 4.1 and 4.2: :func:`phi_t`, :func:`step_cap`, :func:`contraction_bound`,
    :func:`iterations_bound`, :func:`conv_condition_holds`, :func:`conv_step_cap`, :func:`conv_contraction_bound`,
    :func:`conv_iterations_bound`, :func:`conv_step_schedule`, Theorem 4.1's proof along a run
    (:func:`conv_proof_terms`, :func:`conv_proof_checks`), and Theorem 4.2's :func:`conv_phi_star`,
    :func:`sgd_step`, :func:`sgd_iterations`, :func:`sgd_failure_bound`.

Every public function names, in its docstring, the chapter of the book that teaches it.
"""
from . import bounds, closed_forms, estimators, extremes, moments, quadrature
from .bounds import (conv_condition_holds, conv_contraction_bound, conv_iterations_bound, conv_phi_star,
                     conv_proof_checks, conv_proof_terms, conv_step_cap, conv_step_schedule, contraction_bound,
                     iterations_bound, phi_t, sgd_failure_bound, sgd_iterations, sgd_step, step_cap)
from .closed_forms import (GAUSSIAN_BETA, close_patches_cross_limit, gaussian_conv_constants, gaussian_gamma,
                           gaussian_gradient, gaussian_L, gaussian_L_minus, gaussian_loss)
from .estimators import (L, L_cross, L_minus, beta, closeness_bounds, constants, conv_beta, conv_gamma, conv_L,
                         conv_L_minus, cross_sum, default_beta_grid, default_cross_grid, gamma, gamma_avg, mu, rho)
from .extremes import extreme
from .moments import (CONV_MOMENT_KEYS, A_matrices, candidate_sums, close_patches_descent, close_patches_gradient,
                      close_patches_moments_at, conv_moments, directions_at_angle, four_region_gradient,
                      lemma_a1_violations, moment_sums)
from .quadrature import (close_patches_band_mass, close_patches_beta, close_patches_cross_sum, close_patches_gamma,
                         close_patches_L, close_patches_L_cross, close_patches_L_minus, close_patches_moments,
                         close_patches_small_angle_limits)

__all__ = [
    # moments
    "CONV_MOMENT_KEYS", "A_matrices", "candidate_sums", "close_patches_descent", "close_patches_gradient",
    "close_patches_moments_at", "conv_moments", "directions_at_angle", "four_region_gradient", "lemma_a1_violations",
    "moment_sums",
    # extremes
    "extreme",
    # estimators
    "L", "L_cross", "L_minus", "beta", "closeness_bounds", "constants", "conv_beta", "conv_gamma", "conv_L",
    "conv_L_minus", "cross_sum", "default_beta_grid", "default_cross_grid", "gamma", "gamma_avg", "mu", "rho",
    # closed forms
    "GAUSSIAN_BETA", "close_patches_cross_limit", "gaussian_conv_constants", "gaussian_gamma", "gaussian_gradient",
    "gaussian_L", "gaussian_L_minus", "gaussian_loss",
    # quadrature
    "close_patches_band_mass", "close_patches_beta", "close_patches_cross_sum", "close_patches_gamma", "close_patches_L",
    "close_patches_L_cross", "close_patches_L_minus", "close_patches_moments", "close_patches_small_angle_limits",
    # bounds
    "conv_condition_holds", "conv_contraction_bound", "conv_iterations_bound", "conv_phi_star", "conv_proof_checks",
    "conv_proof_terms", "conv_step_cap", "conv_step_schedule", "contraction_bound", "iterations_bound", "phi_t",
    "sgd_failure_bound", "sgd_iterations", "sgd_step", "step_cap",
]

# Public functions carry the path readers use, filterlib.theory.NAME, as their __module__ (numpy's set_module
# habit): help() shows it, and the students' self-checks name a function they forbid by it.
for _module in (bounds, closed_forms, estimators, extremes, moments, quadrature):
    for _name in __all__:
        _obj = getattr(_module, _name, None)
        if callable(_obj) and getattr(_obj, "__module__", None) == _module.__name__:
            _obj.__module__ = __name__
del _module, _name, _obj

