"""The memories' documented defaults, saved state, argument checks and edge cases, with exact answers."""

from __future__ import annotations

import math

import pytest
import torch

from mama_monai.networks import HashMemory
from mama_monai.networks.blocks.memae_memory import MemAEMemory


def test_hash_memory_defaults_are_the_documented_ones():
    m = HashMemory(16, 8)
    assert (m.hash_bits, m.hard, m.top_k, m.temperature) == (128, True, 8, 1.0)
    assert (m.commitment_weight, m.init_from_data, m.restart_every) == (0.25, True, 100)
    assert m.initialized.dtype == torch.uint8 and int(m.initialized) == 0  # slots not yet from data
    assert int(HashMemory(16, 8, init_from_data=False).initialized) == 1
    assert m.slot_codes.shape == (16, 128) and m.codes_valid is False


def test_hash_memory_saves_its_weights_and_initialised_flag_only():
    m = HashMemory(16, 8, hash_bits=4)
    state = m.state_dict()
    assert set(state) == {"slots", "hash.weight", "hash.bias", "initialized"}  # counts and codes are not saved
    assert state["initialized"].dtype == torch.uint8
    # an older file without the flag loads as initialised (its slots hold data)
    del state["initialized"]
    fresh = HashMemory(16, 8, hash_bits=4)
    fresh.load_state_dict(state)
    assert int(fresh.initialized) == 1 and fresh.initialized.dtype == torch.uint8


@pytest.mark.parametrize("name", ["num_slots", "feature_dim", "hash_bits", "top_k"])
def test_hash_memory_names_the_bad_integer(name):
    kwargs = {"num_slots": 16, "feature_dim": 8, name: 0}
    with pytest.raises(ValueError, match=rf"^{name} must be an integer >= 1, got 0\.$"):
        HashMemory(**kwargs)


def test_hash_memory_accepts_the_boundary_values():
    assert HashMemory(8, 4, addressing="soft", top_k=8).top_k == 8  # top_k == num_slots
    assert HashMemory(8, 4, commitment_weight=0).commitment_weight == 0.0
    assert HashMemory(8, 4, restart_every=0).restart_every == 0  # no restarts
    for bad in (1.0, True):
        with pytest.raises(ValueError, match="restart_every must be an int >= 0"):
            HashMemory(8, 4, restart_every=bad)


def test_a_hash_logit_of_exactly_zero_is_bit_zero():
    m = HashMemory(4, 3, hash_bits=5)
    with torch.no_grad():
        m.hash.weight.zero_()
        m.hash.bias.copy_(torch.tensor([0.0, 1.0, -1.0, 0.0, 2.0]))
    x = torch.randn(2, 3)
    assert m.binary_codes(x).tolist() == [[0, 1, 0, 0, 1]] * 2 and m.binary_codes(x).dtype == torch.uint8
    assert m.codes(x).tolist() == [[-1.0, 1.0, -1.0, -1.0, 1.0]] * 2


@pytest.mark.parametrize("name", ["num_slots", "feature_dim"])
def test_memae_memory_names_the_bad_integer(name):
    kwargs = {"num_slots": 10, "feature_dim": 4, name: 0}
    with pytest.raises(ValueError, match=rf"^{name} must be an integer >= 1, got 0\.$"):
        MemAEMemory(**kwargs)


def test_memae_memory_settings_and_initialisation():
    with pytest.raises(ValueError, match=r"^similarity must be one of \['dot', 'cosine'\], got 'l2'\.$"):
        MemAEMemory(10, 4, similarity="l2")
    assert MemAEMemory(40, 4).shrink_threshold == 2.5 / 40
    assert MemAEMemory(40, 4, shrink_threshold=0).shrink_threshold == 0.0  # 0 = no shrinkage: allowed
    with pytest.raises(ValueError, match=r"shrink_threshold must be in \[0, 1\), got 1\.0"):
        MemAEMemory(40, 4, shrink_threshold=1.0)
    torch.manual_seed(0)
    slots = MemAEMemory(2000, 16).slots.detach()
    bound = 1 / math.sqrt(16)  # uniform in [-1/sqrt(F), 1/sqrt(F)], as the reference code
    assert slots.min() >= -bound and slots.max() <= bound
    assert slots.min() < -0.99 * bound and slots.max() > 0.99 * bound and abs(float(slots.mean())) < 0.01


def test_memae_readout_dtype_entropy_and_shape_checks():
    torch.manual_seed(0)
    m = MemAEMemory(6, 4, shrink_threshold=0)
    q = torch.randn(3, 4, dtype=torch.float64)
    out = m(q)
    assert out.output.dtype == torch.float64
    w = torch.softmax(q.float() @ m.slots.detach().t(), dim=1)  # no shrinkage: plain softmax weights
    torch.testing.assert_close(out.weights.detach(), w)
    expected = -(w * torch.log(w + 1e-12)).sum(dim=1).mean()  # mean over queries of each one's entropy
    torch.testing.assert_close(out.loss.detach(), expected)
    for bad in (torch.randn(3, 5), torch.randn(2, 4, 4)):  # a 3-D query whose second axis fits
        with pytest.raises(ValueError, match=r"query must have shape \(Q, 4\)"):
            m(bad)
    # cosine addressing normalises each query and each slot over the feature axis
    c = MemAEMemory(6, 4, similarity="cosine")
    q = torch.randn(3, 4)
    ref = torch.nn.functional.normalize(q, dim=1) @ torch.nn.functional.normalize(c.slots.detach(), dim=1).t()
    torch.testing.assert_close(c.similarities(q).detach(), ref)


def _hamming_by_hand(m: HashMemory, q: torch.Tensor) -> torch.Tensor:
    """Bits that differ between each query's and each slot's paper codes, counted one by one."""
    a, b = m.binary_codes(q), m.binary_codes(m.slots.detach())
    return (a[:, None, :] != b[None, :, :]).sum(-1).float()


def test_soft_eval_read_is_a_softmax_over_the_top_k_nearest_by_hand():
    torch.manual_seed(0)
    m = HashMemory(12, 6, hash_bits=16, addressing="soft", top_k=3, temperature=2.0, init_from_data=False).eval()
    q = torch.randn(5, 6)
    with torch.no_grad():
        out = m(q)
    d = _hamming_by_hand(m, q)
    expected = torch.zeros(5, 12)
    for i in range(5):
        nearest = torch.argsort(d[i], stable=True)[:3]
        expected[i, nearest] = torch.softmax(-d[i, nearest] / 2.0, dim=0)
    # ties in distance may pick other slots of the same distance: compare the weights per distance
    for i in range(5):
        assert sorted(out.weights[i][out.weights[i] > 0].tolist()) == pytest.approx(sorted(expected[i][expected[i] > 0].tolist()))
        assert set(d[i, out.weights[i] > 0].tolist()) <= set(torch.sort(d[i]).values[:3].tolist())
    assert out.weights.dtype == torch.float32 and torch.equal(out.indices, out.weights.argmax(dim=1))
    torch.testing.assert_close(out.output, out.weights @ m.slots.detach())
    assert out.loss.item() == 0.0


def test_hard_eval_read_weights_are_float_one_hot_rows():
    torch.manual_seed(0)
    m = HashMemory(12, 6, hash_bits=16, init_from_data=False).eval()
    q = torch.randn(5, 6)
    with torch.no_grad():
        out = m(q)
    assert out.weights.dtype == torch.float32
    assert torch.equal(out.weights, torch.nn.functional.one_hot(out.indices, 12).float())
    assert torch.equal(_hamming_by_hand(m, q).gather(1, out.indices[:, None]).flatten(), _hamming_by_hand(m, q).min(1).values)


def test_restart_every_one_moves_unread_slots_after_every_training_call():
    torch.manual_seed(0)
    m = HashMemory(8, 4, hash_bits=16, init_from_data=False, restart_every=1)
    q = torch.randn(3, 4)
    before = m.slots.detach().clone()
    read = m(q).indices
    unread = sorted(set(range(8)) - set(read.tolist()))
    moved = [i for i in range(8) if not torch.equal(m.slots.detach()[i], before[i])]
    assert unread and moved == unread  # every unread slot, and only those, moved onto a query
    assert int(m.calls) == 0 and float(m.reads.sum()) == 0.0  # the counts start again


def test_eval_codes_follow_slots_moved_by_a_training_call():
    # the first training call moves the slots onto queries through .data, which bumps neither the
    # parameter's version nor its pointer: only the training call's own reset keeps eval reads fresh
    torch.manual_seed(0)
    m = HashMemory(8, 4, hash_bits=16)
    q = torch.randn(6, 4)
    m.eval()
    with torch.no_grad():
        m(q)  # codes of the random slots cached
    m.train()
    with torch.no_grad():
        m(torch.randn(8, 4) * 3)  # slots initialised from these queries
    m.eval()
    fresh = HashMemory(8, 4, hash_bits=16)
    fresh.load_state_dict(m.state_dict())
    fresh.eval()
    with torch.no_grad():
        assert torch.equal(m(q).indices, fresh(q).indices)
        assert torch.equal(m(q).output, fresh(q).output)


def test_soft_training_read_loss_uses_the_weighted_read_by_hand():
    torch.manual_seed(0)
    m = HashMemory(10, 4, hash_bits=16, addressing="soft", top_k=4, commitment_weight=0.5, init_from_data=False, restart_every=0)
    q = torch.randn(6, 4)
    out = m(q)
    read = out.weights @ m.slots.detach()  # weighted over the top-k, not the nearest slot alone
    expected = torch.nn.functional.mse_loss(read, q) + 0.5 * torch.nn.functional.mse_loss(q, read)
    torch.testing.assert_close(out.loss.detach(), expected)
    nearest = m.slots.detach()[out.indices]
    assert not torch.allclose(read, nearest)  # the two reads differ here, so the test can tell them apart
