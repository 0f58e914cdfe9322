"""Property tests (hypothesis): no public filterlib function returns NaN silently or fails with a torch-internal error.

Every call below gets random shapes and values, including NaN, ±inf, zero vectors, wrong ranks, wrong dtypes,
non-positive sizes and step sizes, numpy arrays of either float dtype and complex numbers. Each call must either
return NaN-free values or raise ValueError / TypeError (or, for a diverging run, FloatingPointError) with a message
that names a parameter. Any other exception (an IndexError or RuntimeError from inside torch) or a NaN in the output
fails the test.

The extremes of each dtype (entries near its overflow and underflow) get their own properties: the model's
functions give the value that homogeneity in w and Z predicts, or a ValueError that suggests float64 where float32
cannot hold it; angles do not depend on scale. The settings' environment variables are drawn too.
"""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import filterlib as fl
from filterlib import data, distributions, initialization, theory

SETTINGS = settings(max_examples=int(__import__("os").environ.get("FILTERLIB_HYPOTHESIS_EXAMPLES", 40)), deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
EDGE_VALUES = [0.0, -0.0, 1.0, -1.0, 1e-300, 1e6, math.nan, math.inf, -math.inf]
PARAMS = re.compile(r"\b(w|w0|w_star|Z|images|size|stride|phi|phis|n|k|p|m|sigma|sigma2|radius|alpha|q|eta|steps|"
                    r"gamma|L|beta|L_cross|eps|theta|wavelength|psi|dtype|n_directions|record_every|batch_size|"
                    r"base_sigma|r|lines|seed|data|x|y|loss)\b")


def values(draw_float=True):
    plain = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False, width=64)
    return st.one_of(plain, st.sampled_from(EDGE_VALUES)) if draw_float else plain


@st.composite
def arrays(draw, max_dims=3, max_side=4):
    """A float32/float64 tensor (or, rarely, an int tensor, a list, a numpy array of either float dtype or a complex
    array, list or tensor) of random rank and shape."""
    ndim = draw(st.integers(0, max_dims))
    shape = tuple(draw(st.integers(0, max_side)) for _ in range(ndim))
    size = int(np.prod(shape)) if shape else 1
    flat = draw(st.lists(values(), min_size=size, max_size=size))
    kind = draw(st.sampled_from(["f64", "f64", "f32", "int", "list", "np64", "np32", "complex"]))
    a = np.array(flat, dtype=np.float64).reshape(shape)
    if kind == "int":
        return torch.as_tensor(np.nan_to_num(a, posinf=1, neginf=-1).astype(np.int64))
    if kind == "list":
        return a.tolist()
    if kind in ("np64", "np32"):
        with np.errstate(over="ignore"):
            return a.astype(np.float64 if kind == "np64" else np.float32)
    if kind == "complex":
        c = a + 1j
        return draw(st.sampled_from([c, c.tolist(), torch.as_tensor(c)]))
    return torch.as_tensor(a, dtype=torch.float64 if kind == "f64" else torch.float32)


@st.composite
def samples(draw):
    """A mostly well-formed (n, k, p) float64 sample, sometimes poisoned with a special value or a zero."""
    n, k, p = draw(st.integers(1, 30)), draw(st.integers(1, 4)), draw(st.integers(2, 4))
    seed = draw(st.integers(0, 2 ** 16))
    Z = torch.randn(n, k, p, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    if draw(st.booleans()):
        idx = tuple(draw(st.integers(0, s - 1)) for s in Z.shape)
        Z[idx] = draw(st.sampled_from(EDGE_VALUES))
    return Z


def check(call):
    """Run call(); it must return NaN-free output or raise a clear, parameter-naming error."""
    try:
        out = call()
    except (ValueError, TypeError) as exc:
        assert PARAMS.search(str(exc)), f"error does not name a parameter: {exc!r}"
        return None
    except FloatingPointError as exc:
        assert "step" in str(exc), exc
        return None
    except NotImplementedError:
        raise
    assert not has_nan(out), f"NaN returned silently: {out!r}"
    return out


def has_nan(out) -> bool:
    if isinstance(out, torch.Tensor):
        return bool(torch.isnan(out).any()) if out.is_floating_point() else False
    if isinstance(out, np.ndarray):
        return bool(np.isnan(out).any()) if np.issubdtype(out.dtype, np.floating) else False
    if isinstance(out, float):
        return math.isnan(out)
    if isinstance(out, (tuple, list)):
        return any(has_nan(o) for o in out)
    if isinstance(out, dict):
        return any(has_nan(o) for o in out.values())
    if isinstance(out, fl.History):
        return any(has_nan(getattr(out, key)) for key in ("loss", "distance", "angle"))
    return False


# ----------------------------------------------------------------------------------------------------------- model

@SETTINGS
@given(w=arrays(), w_star=arrays(), Z=arrays(max_dims=4))
def test_model_functions_on_arbitrary_arrays(w, w_star, Z):
    check(lambda: fl.forward(w, Z))
    check(lambda: fl.loss(w, w_star, Z))
    check(lambda: fl.gradient(w, w_star, Z))
    check(lambda: fl.angle(w, w_star))


@SETTINGS
@given(Z=samples(), data_=st.data())
def test_model_functions_on_near_valid_samples(Z, data_):
    p = Z.shape[-1]
    w = torch.as_tensor(data_.draw(st.lists(values(), min_size=p, max_size=p)), dtype=torch.float64)
    w_star = torch.as_tensor(data_.draw(st.lists(values(False), min_size=p, max_size=p)), dtype=torch.float64)
    for call in (lambda: fl.forward(w, Z), lambda: fl.loss(w, w_star, Z), lambda: fl.gradient(w, w_star, Z),
                 lambda: fl.angle(w, w_star), lambda: fl.model.relative_loss(w, w_star, Z)):
        check(call)


@SETTINGS
@given(images=arrays(max_dims=3, max_side=7), size=st.integers(-1, 8), stride=st.integers(-1, 4))
def test_patches_on_arbitrary_images(images, size, stride):
    out = check(lambda: fl.patches(images, size, stride))
    if out is not None:
        assert out.dim() == 3


def is_complex(x) -> bool:
    return bool(np.iscomplexobj(x)) if not isinstance(x, torch.Tensor) else x.is_complex()


@SETTINGS
@given(w=arrays(max_dims=1), Z=arrays(max_dims=3))
def test_complex_input_is_always_a_type_error(w, Z):
    for call in (lambda: fl.forward(w, Z), lambda: fl.angle(w, Z)):
        try:
            call()
        except (TypeError, ValueError) as exc:                          # (another input may be refused first)
            assert PARAMS.search(str(exc)), exc
        else:
            assert not is_complex(w) and not is_complex(Z), "complex input was accepted"


# Exponents e of 2**e that keep entries of magnitude 1/2…2 normal: float32 ±125, float64 ±1021.
EXPONENTS = {torch.float32: 120, torch.float64: 1015}


@st.composite
def scaled_problem(draw):
    """(dtype, w, w_star, Z, a, s, unit float64 w, w_star, Z): entries of magnitude 1/2…2 with random signs, scaled
    exactly by a = 2**ea (w, w_star) and s = 2**es (Z), powers drawn over the whole exponent range of the dtype."""
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    top = EXPONENTS[dtype]
    ea, es = draw(st.integers(-top, top)), draw(st.integers(-top, top))
    n, k, p, R = draw(st.integers(1, 20)), draw(st.integers(1, 3)), draw(st.integers(2, 5)), draw(st.integers(1, 3))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2 ** 16)))

    def entries(*shape):
        mag = 2 ** (2 * torch.rand(*shape, generator=g, dtype=torch.float64) - 1)
        sign = torch.where(torch.rand(*shape, generator=g, dtype=torch.float64) < 0.5, -1.0, 1.0)
        return (mag * sign).float().double()                            # exact in float32 too
    W, ws, Z = entries(R, p), entries(p), entries(n, k, p)
    a, s = math.ldexp(1.0, ea), math.ldexp(1.0, es)
    scale = lambda t, e: torch.ldexp(t, torch.tensor(e)).to(dtype)      # noqa: E731 (exact: a power of two)
    return dtype, scale(W, ea), scale(ws, ea), scale(Z, es), (ea, es), W, ws, Z


def _expected(name, W, ws, Z, ea, es):
    """The float64 value on the unit inputs, and the power of 2 homogeneity multiplies it by."""
    i, j = {"forward": (1, 1), "loss": (2, 2), "gradient": (1, 2)}[name]
    args = (W, Z) if name == "forward" else (W, ws, Z)
    return getattr(fl, name)(*args), i * ea + j * es


@SETTINGS
@given(problem=scaled_problem(), name=st.sampled_from(["forward", "loss", "gradient"]))
def test_model_functions_are_exact_or_say_float64_at_the_extremes_of_each_dtype(problem, name):
    dtype, w, w_star, Z, (ea, es), W, ws, Z1 = problem
    unit, power = _expected(name, W, ws, Z1, ea, es)
    fi = np.finfo(np.float32 if dtype == torch.float32 else np.float64)
    top = float(unit.abs().max())
    exponent = power + (math.frexp(top)[1] if top > 0 else -10**6)     # log2 of the largest |value|
    args = (w, Z) if name == "forward" else (w, w_star, Z)
    try:
        got = getattr(fl, name)(*args)
    except ValueError as exc:
        assert exponent >= fi.maxexp - 1, f"refused a representable value 2**{exponent}: {exc}"
        assert "exceeds the range" in str(exc) and "Z" in str(exc) and "w" in str(exc), exc
        if dtype == torch.float32:
            assert "use float64" in str(exc), exc
        return
    assert exponent <= fi.maxexp + 1, f"returned a value 2**{exponent} beyond {dtype}"
    assert bool(torch.isfinite(got).all()), got
    if top > 0 and exponent > fi.minexp + fi.nmant + 4:                  # far enough from underflow to compare
        rel = float((torch.ldexp(got.double(), torch.tensor(-power)) - unit).abs().max()) / top
        assert rel < (1e-4 if dtype == torch.float32 else 1e-10), rel


@SETTINGS
@given(problem=scaled_problem(), eb=st.integers(-1015, 1015))
def test_angles_are_scale_free_at_the_extremes_of_each_dtype(problem, eb):
    dtype, w, _, _, _, W, ws, _ = problem
    eb = max(-EXPONENTS[dtype], min(EXPONENTS[dtype], eb))
    w_star = torch.ldexp(ws, torch.tensor(eb)).to(dtype)
    got = fl.angle(w, w_star)
    torch.testing.assert_close(got.double(), fl.angle(W, ws), rtol=0, atol=1e-5 if dtype == torch.float32 else 1e-12)


SETTING_VALUES = {"FILTERLIB_DTYPE": ["float32", "float64", " FLOAT64 ", "", "float16", "double", "bogus"],
                  "FILTERLIB_DEVICE": ["cpu", "CPU", "auto", "", "tpu", "cuda:0", "bogus"]}


@SETTINGS
@given(dtype=st.sampled_from(SETTING_VALUES["FILTERLIB_DTYPE"]),
       device=st.sampled_from(SETTING_VALUES["FILTERLIB_DEVICE"]))
def test_settings_from_the_environment_work_or_name_the_variable(dtype, device):
    import os

    saved = {key: os.environ.get(key) for key in SETTING_VALUES}
    os.environ.update(FILTERLIB_DTYPE=dtype, FILTERLIB_DEVICE=device)
    try:
        dtype_ok = dtype.strip().lower() in ("float32", "float64", "")
        device_ok = device.strip().lower() in ("cpu", "auto", "")
        for call in (lambda: fl.forward([1.0, -2.0], [[[1.0, 1.0]]]),
                     lambda: distributions.gaussian(3, 1, 2, seed=0), lambda: fl.generator(0)):
            try:
                out = call()
            except ValueError as exc:
                assert str(exc).startswith(("FILTERLIB_DTYPE", "FILTERLIB_DEVICE")), exc
                assert not (dtype_ok and device_ok), exc
                continue
            if isinstance(out, torch.Tensor):
                assert dtype_ok and out.dtype == fl.default_dtype()
            else:
                assert device_ok
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# ---------------------------------------------------------------------------------------------------------- theory

@SETTINGS
@given(Z=samples(), phi=st.one_of(st.floats(-1, 4), st.sampled_from(EDGE_VALUES)),
       n_directions=st.integers(-1, 4))
def test_estimators_on_near_valid_samples(Z, phi, n_directions):
    w_star = torch.ones(Z.shape[-1], dtype=torch.float64)
    k1 = Z[:, :1]
    kw = dict(n_directions=n_directions)
    for call in (lambda: theory.gamma(k1, w_star, phi, **kw), lambda: theory.L(k1, w_star, phi, **kw),
                 lambda: theory.L_minus(k1, w_star, phi, **kw), lambda: theory.beta(k1, w_star, **kw),
                 lambda: theory.conv_gamma(Z, w_star, phi, **kw), lambda: theory.conv_L(Z, w_star, phi, **kw),
                 lambda: theory.conv_beta(Z, w_star, **kw), lambda: theory.cross_sum(Z, w_star, phi, **kw),
                 lambda: theory.L_cross(Z, w_star, **kw), lambda: theory.rho(Z), lambda: theory.mu(Z, w_star),
                 lambda: theory.gaussian_gamma(phi), lambda: theory.gaussian_L(phi), lambda: theory.gaussian_L_minus(phi),
                 lambda: theory.A_matrices(torch.ones_like(w_star), w_star, k1),
                 lambda: theory.lemma_a1_violations(torch.ones_like(w_star), w_star, k1)):
        check(call)


@SETTINGS
@given(g=st.sampled_from(EDGE_VALUES + [0.1, 0.3]), L=st.sampled_from(EDGE_VALUES + [0.5]), b=st.sampled_from(EDGE_VALUES + [0.1]),
       lc=st.sampled_from(EDGE_VALUES + [0.01]), eta=st.sampled_from(EDGE_VALUES + [0.05]), eps=st.sampled_from(EDGE_VALUES + [1e-3]))
def test_theorem_formulas_on_special_numbers(g, L, b, lc, eta, eps):
    for call in (lambda: theory.step_cap(g, L, b), lambda: theory.contraction_bound(eta, g),
                 lambda: theory.iterations_bound(g, L, b, eps), lambda: theory.conv_step_cap(g, L, b, lc),
                 lambda: theory.conv_contraction_bound(eta, g, lc), lambda: theory.conv_iterations_bound(g, L, b, lc, eps),
                 lambda: theory.conv_condition_holds(g, lc)):
        check(call)


@SETTINGS
@given(w=arrays(max_dims=2), w_star=arrays(max_dims=1), k=st.integers(-1, 4))
def test_gaussian_closed_forms_on_arbitrary_arrays(w, w_star, k):
    check(lambda: theory.gaussian_loss(w, w_star, k=k))
    check(lambda: theory.gaussian_gradient(w, w_star, k=k))
    check(lambda: theory.phi_t(w, w_star))


# --------------------------------------------------------------------------------- samplers, initialisation, data

SIZES = st.one_of(st.integers(-2, 6), st.sampled_from([0.5, math.nan, "3", None]))
REALS = st.one_of(st.floats(-3, 12, allow_nan=False), st.sampled_from(EDGE_VALUES))


@SETTINGS
@given(n=SIZES, k=SIZES, p=SIZES, s=REALS)
def test_samplers(n, k, p, s):
    for call in (lambda: distributions.gaussian(n, k, p, seed=0), lambda: distributions.uniform_cube(n, k, p, seed=0),
                 lambda: distributions.laplace(n, k, p, seed=0), lambda: distributions.angular_mixture(n, s, seed=0),
                 lambda: distributions.close_patches(n, k, s, seed=0),
                 lambda: distributions.angular_mixture_density(torch.tensor([s], dtype=torch.float64), 1.0)):
        check(call)


@SETTINGS
@given(m=SIZES, p=SIZES, a=REALS, q=REALS)
def test_initialisation(m, p, a, q):
    for call in (lambda: initialization.ball(m, p, a, seed=0), lambda: initialization.sphere(m, p, a, seed=0),
                 lambda: initialization.success_probability_ball(p, a),
                 lambda: initialization.success_probability_sphere(p, a),
                 lambda: initialization.theorem_4_4_bound(p, a), lambda: initialization.restart_success(q, m)):
        check(call)


@SETTINGS
@given(size=SIZES, theta=REALS, wl=REALS, sigma=REALS, gamma=REALS, psi=REALS)
def test_gabor(size, theta, wl, sigma, gamma, psi):
    check(lambda: data.gabor(size, theta, wl, sigma, gamma, psi))


# ----------------------------------------------------------------------------------------------------------- train

ETAS = st.one_of(st.sampled_from(EDGE_VALUES + [0.1, 5.0, 1e3]), st.just(lambda t: 0.1), st.just(lambda t: math.nan),
                 st.just(lambda t, w: -1.0))


@SETTINGS
@given(Z=samples(), eta=ETAS, steps=st.integers(-1, 30), batch=st.integers(-1, 3), scale=st.sampled_from([0.0, 1.0, 1e3]))
def test_training_never_returns_nan(Z, eta, steps, batch, scale):
    p = Z.shape[-1]
    w_star = torch.ones(p, dtype=torch.float64)
    w0 = scale * torch.linspace(-1, 1, p, dtype=torch.float64)
    check(lambda: fl.gradient_descent(w0, w_star, Z, eta=eta, steps=steps, progress=False))
    check(lambda: fl.sgd(w0, w_star, Z, eta=eta, steps=steps, batch_size=batch, seed=0, progress=False))


def test_diverging_run_names_the_step_and_suggests_a_smaller_step():
    Z = distributions.gaussian(200, 1, 3, seed=0, dtype=torch.float64)
    w_star = torch.ones(3, dtype=torch.float64)
    with pytest.raises(FloatingPointError, match=r"step \d+.*smaller step size"):
        fl.gradient_descent(torch.zeros(3, dtype=torch.float64) + 0.5, w_star, Z, eta=1e6, steps=200, progress=False)
