"""filterlib._validate: what every public function does with numbers, arrays and settings it is given.

Complex input is refused, numpy arrays keep their float dtype, a float32 conversion that cannot hold a value says so,
the settings' variables are checked where they are read, and seeds and devices are checked before torch sees them.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import filterlib as fl
from filterlib import _validate as v
from filterlib import config, distributions

f32, f64 = torch.float32, torch.float64


@pytest.fixture
def Z64():
    return distributions.gaussian(30, 2, 4, seed=0, dtype=f64)


# ------------------------------------------------------------------------------------------------ complex input

@pytest.mark.parametrize("x", [np.array([1 + 5j, 2, 3, 4]), [1 + 5j, 2, 3, 4], torch.tensor([1 + 5j, 2, 3, 4]),
                               np.complex64(1j)])
def test_complex_input_is_a_type_error_naming_the_parameter(x, Z64):
    with pytest.raises(TypeError, match=r"^w must (hold real numbers|be a float32 or float64 tensor \(real)"):
        fl.forward(x, Z64)


def test_complex_never_reaches_a_cast_warning(Z64, recwarn):
    with pytest.raises(TypeError):
        fl.forward(np.array([1 + 5j, 2, 3, 4]), Z64)
    assert not [w for w in recwarn if "imaginary" in str(w.message)]


# ------------------------------------------------------------------------------------------------- numpy dtypes

@pytest.mark.parametrize("np_dtype, torch_dtype", [(np.float64, f64), (np.float32, f32)])
def test_numpy_floats_keep_their_dtype(np_dtype, torch_dtype):
    x = np.arange(6, dtype=np_dtype).reshape(2, 3)
    t = v.tensor(x, "x")
    assert t.dtype == torch_dtype
    assert np.array_equal(t.numpy(), x)
    assert v.tensor(np_dtype(2.5), "x").dtype == torch_dtype and v.tensor(np_dtype(2.5), "x").dim() == 0


def test_lists_numbers_and_integer_arrays_get_the_default_dtype(monkeypatch):
    for setting, dtype in (("float32", f32), ("float64", f64)):
        monkeypatch.setenv("FILTERLIB_DTYPE", setting)
        for x in ([1.0, 2.0], 3.0, np.arange(3), np.array([True, False]), np.float16(1.5)):
            assert v.tensor(x, "x").dtype == dtype, (setting, x)
    assert v.tensor(0.5, "x").dim() == 0


def test_an_explicit_dtype_wins_over_the_arrays(Z64):
    assert v.tensor(np.ones(3, dtype=np.float32), "x", dtype=f64).dtype == f64
    assert fl.forward(np.ones(4, dtype=np.float32), Z64).dtype == f64        # w follows Z, as documented


def test_numpy_float64_sample_stays_float64_and_messages_name_only_given_dtypes(Z64):
    Z = Z64.numpy()
    assert fl.forward(np.ones(4), Z).dtype == f64
    torch.testing.assert_close(fl.forward(np.ones(4), Z), fl.forward(torch.ones(4, dtype=f64), Z64))
    with pytest.raises(TypeError) as exc:
        fl.forward(torch.ones(4, dtype=f32), Z)                  # the user passed float32 w and float64 Z
    assert "w has dtype torch.float32 but Z has dtype torch.float64" in str(exc.value)


def test_a_float32_conversion_that_overflows_names_the_parameter_and_suggests_float64():
    Z32 = distributions.gaussian(30, 2, 4, seed=0, dtype=f32)
    with pytest.raises(ValueError, match=r"w has entries up to 1e\+200.*float32.*use float64"):
        fl.forward(np.full(4, 1e200), Z32)
    with pytest.raises(ValueError, match=r"Z has entries up to 1e\+40.*float64"):
        v.tensor([1e40, 1.0], "Z", dtype=f32)
    with pytest.raises(ValueError, match="Z contains NaN or infinite values"):          # not an overflow: a NaN
        v.tensor([math.nan, 1e40], "Z", dtype=f32)


# ---------------------------------------------------------------------------------------------------- settings

@pytest.mark.parametrize("variable, value, call", [
    ("FILTERLIB_DTYPE", "float16", lambda: fl.forward([1.0, 2.0], [[[1.0, 1.0]]])),
    ("FILTERLIB_DTYPE", "bogus", lambda: distributions.gaussian(3, 1, 2, seed=0)),
    ("FILTERLIB_DEVICE", "bogus", lambda: fl.generator(0)),
    ("FILTERLIB_DEVICE", "tpu", lambda: distributions.gaussian(3, 1, 2, seed=0)),
    ("FILTERLIB_MAX_BYTES", "lots", lambda: config.max_bytes()),
])
def test_an_invalid_setting_is_reported_where_it_is_read(monkeypatch, variable, value, call):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError) as exc:
        call()
    message = str(exc.value)
    assert message.startswith(variable) and repr(value) in message, message
    allowed = {"FILTERLIB_DTYPE": "float32 or float64", "FILTERLIB_DEVICE": "cpu, cuda, auto",
               "FILTERLIB_MAX_BYTES": "K, M, G or T"}[variable]
    assert allowed in message


def test_settings_are_case_and_space_tolerant_and_empty_means_default(monkeypatch):
    monkeypatch.setenv("FILTERLIB_DTYPE", " Float64 ")
    assert config.default_dtype() == f64
    monkeypatch.setenv("FILTERLIB_DTYPE", "")
    assert config.default_dtype() == f32
    monkeypatch.setenv("FILTERLIB_DEVICE", "")
    assert config.device().type in ("cpu", "cuda")
    monkeypatch.setenv("FILTERLIB_MAX_BYTES", "")
    assert config.max_bytes() == config.DEFAULT_MAX_BYTES


@pytest.mark.parametrize("text, value", [("1", 1), ("512", 512), ("4K", 4096), ("3m", 3 * 2**20), ("2G", 2**31),
                                         ("1T", 2**40), ("8GiB", 8 * 2**30), (" 5 ", 5)])
def test_parse_bytes(text, value):
    assert config.parse_bytes(text, "--max-bytes") == value


@pytest.mark.parametrize("text", ["0", "-1", "1.5G", "G", "", "ten", "4X"])
def test_parse_bytes_refuses_with_the_name(text):
    with pytest.raises(ValueError, match="^--max-bytes must be a positive number of bytes"):
        config.parse_bytes(text, "--max-bytes")


# ------------------------------------------------------------------------------------------ seeds and devices

def test_seed_range():
    assert v.seed(0) == 0 and v.seed(2**64 - 1) == 2**64 - 1
    with pytest.raises(ValueError, match=r"seed must be an integer from 0 to 2\*\*64 − 1 = 18446744073709551615"):
        v.seed(2**64)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        v.seed(-1)
    with pytest.raises(TypeError, match="seed"):
        v.seed(1.0)
    a = torch.rand(3, generator=fl.generator(2**64 - 1, "cpu"))
    b = torch.rand(3, generator=torch.Generator().manual_seed(2**64 - 1))
    assert torch.equal(a, b)


@pytest.mark.parametrize("device, error", [("bogus", ValueError), ("", ValueError), (3, TypeError),
                                           (["cpu"], TypeError)])
def test_generator_device_errors_name_device(device, error):
    with pytest.raises(error, match="^device"):
        fl.generator(0, device)


def test_generator_accepts_device_objects_and_strings():
    assert fl.generator(1, torch.device("cpu")).device.type == "cpu"
    assert fl.generator(1, "cpu").device.type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device 'cuda' is not available"):
            fl.generator(1, "cuda")


# ------------------------------------------------------------------------------------------------- zero tests

def test_tiny_vectors_are_not_zero():
    v.nonzero_rows(torch.full((2, 3), 1e-30, dtype=f32), "w", any_scale=True)   # squares underflow, entries do not
    v.nonzero_rows(torch.tensor([5e-324, 0.0], dtype=f64), "w", any_scale=True)
    for any_scale in (True, False):
        with pytest.raises(ValueError, match="w must be non-zero"):
            v.nonzero_rows(torch.tensor([[1.0, 0.0], [0.0, 0.0]]), "w", any_scale=any_scale)


@pytest.mark.parametrize("x, how", [(torch.full((3,), 1e-30), "underflows to 0 in float32: rescale it .*float64"),
                                    (torch.full((3,), 1e-300, dtype=f64), "underflows to 0 in float64: rescale it"),
                                    (torch.full((3,), 1e30), "overflows in float32"),
                                    (torch.full((3,), 1e200, dtype=f64), "overflows in float64")])
def test_a_norm_beyond_the_dtype_is_refused_where_plain_norms_are_used(x, how):
    with pytest.raises(ValueError, match=f"^w_star has entries up to .* whose squared norm {how}"):
        v.nonzero_rows(x, "w_star")
    v.nonzero_rows(x, "w_star", any_scale=True)
