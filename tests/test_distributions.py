"""filterlib.distributions: shapes, moments, seeding, errors."""
import pytest
import torch

import filterlib as fl
from filterlib import distributions


def test_gaussian_shape_dtype_and_moments():
    Z = distributions.gaussian(20_000, 3, 4, seed=0, dtype=torch.float64)
    assert Z.shape == (20_000, 3, 4) and Z.dtype == torch.float64
    flat = Z.reshape(-1, 4)
    n = flat.shape[0]
    assert flat.mean(0).abs().max() < 4 / n ** 0.5            # mean 0 within 4 standard errors
    cov = flat.T @ flat / n
    assert (cov - torch.eye(4, dtype=torch.float64)).abs().max() < 4 * (2 / n) ** 0.5


def test_gaussian_is_reproducible():
    assert torch.equal(distributions.gaussian(10, 2, 3, seed=5), distributions.gaussian(10, 2, 3, seed=5))
    assert not torch.equal(distributions.gaussian(10, 2, 3, seed=5), distributions.gaussian(10, 2, 3, seed=6))
    g1, g2 = fl.generator(1), fl.generator(1)
    assert torch.equal(distributions.gaussian(4, 1, 2, generator=g1), distributions.gaussian(4, 1, 2, generator=g2))


@pytest.mark.parametrize("args,match", [((0, 1, 2), "n must be a positive integer"),
                                        ((5, -1, 2), "k must be a positive integer"),
                                        ((5, 1, 2.5), "p must be a positive integer")])
def test_gaussian_bad_sizes(args, match):
    with pytest.raises((ValueError, TypeError), match=match):
        distributions.gaussian(*args, seed=0)


def test_gaussian_needs_seed_or_generator():
    with pytest.raises(ValueError, match="pass a seed"):
        distributions.gaussian(3, 1, 2)
