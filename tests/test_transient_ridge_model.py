import math

import pytest
import torch

from helpers.transient_ridge import GroupedTransformer, ModelConfig, TaskPool, sample_batch, tokenize

CFG = ModelConfig(D=3, K=4, d_model=16, n_layers=2, n_heads=2, d_mlp=32)


def tokens_for(G, B=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    pool = TaskPool(CFG.D)
    batches = [sample_batch(pool, math.inf, B, CFG.K, 0.1, generator=g) for _ in range(G)]
    return torch.stack([tokenize(b.xs, b.ys) for b in batches]), torch.stack([b.ys for b in batches])


def test_shapes_and_parameter_count():
    model = GroupedTransformer(CFG, groups=3, generator=torch.Generator().manual_seed(0))
    tokens, ys = tokens_for(3)
    assert model(tokens).shape == ys.shape == (3, 5, CFG.K)
    assert model.parameter_count() * 3 == sum(p.numel() for p in model.parameters())


def test_prediction_is_causal():
    model = GroupedTransformer(CFG, groups=1, generator=torch.Generator().manual_seed(0))
    tokens, _ = tokens_for(1)
    base = model(tokens)
    changed = tokens.clone()
    changed[:, :, 3] += 1.0            # the y-token of pair 2 (position 3): visible to predictions k >= 3 only
    after = model(changed)
    assert torch.allclose(after[:, :, :2], base[:, :, :2])
    assert not torch.allclose(after[:, :, 2:], base[:, :, 2:])


def test_groups_are_independent_models():
    model = GroupedTransformer(CFG, groups=3, generator=torch.Generator().manual_seed(1))
    tokens, _ = tokens_for(3)
    out = model(tokens)
    for g in range(3):
        assert torch.allclose(model.select(g)(tokens[g:g + 1])[0], out[g], atol=1e-6)


def test_batched_training_equals_separate_training():
    torch.manual_seed(0)
    grouped = GroupedTransformer(CFG, groups=3, generator=torch.Generator().manual_seed(2))
    singles = [grouped.select(g) for g in range(3)]
    opt = torch.optim.Adam(grouped.parameters(), lr=1e-2)
    opts = [torch.optim.Adam(s.parameters(), lr=1e-2) for s in singles]
    for step in range(4):
        tokens, ys = tokens_for(3, seed=10 + step)
        loss = ((grouped(tokens) - ys) ** 2).mean(dim=(1, 2)).sum()   # sum over groups keeps gradients apart
        opt.zero_grad()
        loss.backward()
        opt.step()
        for g, (s, o) in enumerate(zip(singles, opts)):
            l_g = ((s(tokens[g:g + 1]) - ys[g:g + 1]) ** 2).mean()
            o.zero_grad()
            l_g.backward()
            o.step()
    for g, s in enumerate(singles):
        for (name, p), q in zip(grouped.named_parameters(), s.parameters()):
            assert torch.allclose(p[g], q[0], atol=1e-5), name


@pytest.mark.parametrize("kwargs, match", [
    (dict(d_model=10, n_heads=4), "must divide d_model"),
    (dict(K=0), "K must be an int >= 1"),
])
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ModelConfig(**kwargs)


def test_bad_tokens_and_groups():
    model = GroupedTransformer(CFG, groups=2)
    with pytest.raises(ValueError, match=r"tokens must be \(G=2"):
        model(torch.zeros(1, 2, 8, 4))
    with pytest.raises(ValueError, match="groups must be an int >= 1"):
        GroupedTransformer(CFG, groups=0)
    with pytest.raises(ValueError, match=r"g must be in \[0, 2\)"):
        model.select(2)


def test_attention_patterns_on_request():
    model = GroupedTransformer(CFG, groups=2, generator=torch.Generator().manual_seed(3))
    tokens, _ = tokens_for(2)
    preds, patterns = model(tokens, return_attention=True)
    assert torch.allclose(preds, model(tokens), atol=1e-6)           # the explicit softmax path = SDPA's
    assert len(patterns) == CFG.n_layers
    T = 2 * CFG.K
    for p in patterns:
        assert p.shape == (2, 5, CFG.n_heads, T, T)
        assert torch.allclose(p.sum(-1), torch.ones(2, 5, CFG.n_heads, T), atol=1e-6)   # rows are distributions
        assert (p.triu(1) == 0).all()                                                   # causal: no look-ahead
    assert torch.allclose(model.select(1)(tokens[1:], return_attention=True)[1][0][0], patterns[0][1], atol=1e-6)
