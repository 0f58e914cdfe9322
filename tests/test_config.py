"""filterlib.config: device and dtype from the environment, seeded generators."""
import pytest
import torch

import filterlib as fl
from filterlib import config, rng


def test_device_choices(monkeypatch):
    monkeypatch.setenv("FILTERLIB_DEVICE", "cpu")
    assert config.device() == torch.device("cpu")
    monkeypatch.setenv("FILTERLIB_DEVICE", "auto")
    assert config.device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setenv("FILTERLIB_DEVICE", "tpu")
    with pytest.raises(ValueError, match="FILTERLIB_DEVICE must be one of cpu, cuda, auto"):
        config.device()


def test_cuda_choice(monkeypatch):
    monkeypatch.setenv("FILTERLIB_DEVICE", "cuda")
    if torch.cuda.is_available():
        assert config.device().type == "cuda"
    else:
        with pytest.raises(ValueError, match="torch sees no CUDA device"):
            config.device()


def test_dtype(monkeypatch):
    assert config.default_dtype() == torch.float32
    monkeypatch.setenv("FILTERLIB_DTYPE", "float64")
    assert config.default_dtype() == torch.float64
    assert fl.forward([1.0, 2.0], [[[1.0, 1.0]]]).dtype == torch.float64
    monkeypatch.setenv("FILTERLIB_DTYPE", "float16")
    with pytest.raises(ValueError, match="FILTERLIB_DTYPE"):
        config.default_dtype()


def test_generator_is_seeded():
    a = torch.randn(5, generator=fl.generator(3))
    b = torch.randn(5, generator=fl.generator(3))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        fl.generator(-1)
    with pytest.raises(TypeError, match="seed"):
        fl.generator(1.5)


def test_resolve_generator():
    g = fl.generator(0)
    assert rng.resolve_generator(g) is g
    with pytest.raises(ValueError, match="either generator or seed"):
        rng.resolve_generator(g, 1)
    with pytest.raises(ValueError, match="pass a seed"):
        rng.resolve_generator()
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        rng.resolve_generator(42)
