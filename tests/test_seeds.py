"""The one seed derivation: a fold of the keys, checked against the formula worked by hand."""
import numpy as np
import pytest
import torch

from helpers.seeds import MODULUS, PRIME, derive_seed, numpy_generator, step_generator, torch_generator


def test_derive_seed_is_the_documented_fold():
    assert derive_seed(7) == 7
    assert derive_seed(7, 5) == 7 * 1_000_003 + 5
    assert derive_seed(7, 5, 3) == (7 * PRIME + 5) * PRIME + 3
    big = derive_seed(2**40, 2**40, 2**40)
    assert big == ((2**40 * PRIME + 2**40) % MODULUS * PRIME + 2**40) % MODULUS and 0 <= big < MODULUS


def test_streams_depend_on_every_key_and_only_on_the_keys():
    a = torch.rand(4, generator=torch_generator(1, 2, 3))
    assert torch.equal(a, torch.rand(4, generator=torch_generator(1, 2, 3)))
    for other in [(1, 2, 4), (1, 3, 3), (2, 2, 3), (1, 2)]:
        assert not torch.equal(a, torch.rand(4, generator=torch_generator(*other)))
    assert torch.equal(torch.rand(3, generator=step_generator(4, 9)), torch.rand(3, generator=torch_generator(4, 9)))
    assert torch.equal(torch.rand(3, generator=torch_generator(5)),
                       torch.rand(3, generator=torch.Generator().manual_seed(5)))
    assert np.array_equal(numpy_generator(1, 2).random(3), np.random.default_rng(derive_seed(1, 2)).random(3))


@pytest.mark.parametrize("keys, match", [((), "at least one key"), ((1, -2), "key 1 is -2"), ((1.5,), "key 0 is 1.5"),
                                         ((True,), "key 0 is True")])
def test_bad_keys(keys, match):
    with pytest.raises(ValueError, match=match):
        derive_seed(*keys)
