import numpy as np
import pytest
import torch

from mama_monai.networks import HashMemory


def numpy_hamming(memory: HashMemory, queries: torch.Tensor) -> np.ndarray:
    """Reference: the paper's {0,1} codes h = 1/2 (sgn(sigmoid(fc(m)) - 1/2) + 1), XOR, popcount."""
    with torch.no_grad():
        hq = (torch.sigmoid(memory.hash(queries)) > 0.5).numpy()
        hm = (torch.sigmoid(memory.hash(memory.slots)) > 0.5).numpy()
    return np.array([[np.count_nonzero(a ^ b) for b in hm] for a in hq])


@pytest.mark.parametrize("training", [False, True])
def test_hard_addressing_reads_exactly_the_nearest_slot_by_hamming(training):
    torch.manual_seed(0)
    memory = HashMemory(num_slots=50, feature_dim=16, hash_bits=32).train(training)
    queries = torch.randn(40, 16)
    readout = memory(queries)
    ref = numpy_hamming(memory, queries)
    expected = ref.argmin(axis=1)  # ties -> lowest index, as torch.argmin
    np.testing.assert_array_equal(readout.indices.numpy(), expected)
    assert torch.equal((readout.weights > 0.5).sum(1), torch.ones(40, dtype=torch.long))
    torch.testing.assert_close(readout.output, memory.slots[readout.indices].detach(), rtol=1e-5, atol=1e-5)


def test_training_vq_loss_uses_exactly_the_read_slots():
    # codebook ||sg(z) - read||^2 + 0.25 ||z - sg(read)||^2 with read = the chosen slots' values
    torch.manual_seed(0)
    memory = HashMemory(num_slots=50, feature_dim=16, hash_bits=32, commitment_weight=0.25).train()
    queries = torch.randn(40, 16)
    readout = memory(queries)
    read = memory.slots.detach()[torch.as_tensor(numpy_hamming(memory, queries).argmin(axis=1))]
    expected = 1.25 * torch.mean((read - queries) ** 2)
    torch.testing.assert_close(readout.loss, expected, rtol=1e-6, atol=1e-7)


def test_hamming_matrix_product_matches_xor_popcount():
    torch.manual_seed(1)
    memory = HashMemory(num_slots=30, feature_dim=8, hash_bits=128)
    queries = torch.randn(20, 8)
    d = memory.hamming(memory.codes(queries), memory.codes(memory.slots))
    np.testing.assert_array_equal(d.numpy().astype(int), numpy_hamming(memory, queries))


def test_binary_codes_follow_the_paper_formula():
    torch.manual_seed(2)
    memory = HashMemory(10, 8, hash_bits=16)
    x = torch.randn(5, 8)
    h = 0.5 * (torch.sign(torch.sigmoid(memory.hash(x)) - 0.5) + 1)
    torch.testing.assert_close(memory.binary_codes(x).float(), h)


@pytest.mark.parametrize("training", [False, True])
def test_soft_addressing_weights_sum_to_one_over_top_k(training):
    torch.manual_seed(0)
    memory = HashMemory(40, 16, addressing="soft", top_k=5).train(training)
    readout = memory(torch.randn(12, 16))
    torch.testing.assert_close(readout.weights.sum(1), torch.ones(12))
    assert ((readout.weights > 0).sum(1) <= 5).all()
    assert (readout.weights >= 0).all()


def test_training_gradients_reach_slots_hash_layer_and_queries():
    torch.manual_seed(0)
    memory = HashMemory(20, 16, hash_bits=32).train()
    queries = torch.randn(10, 16, requires_grad=True)
    readout = memory(queries)
    target = torch.randn(10, 16)
    (torch.nn.functional.mse_loss(readout.output, target) + readout.loss).backward()
    assert memory.slots.grad[readout.indices.unique()].abs().sum() > 0
    assert memory.hash.weight.grad.abs().sum() > 0
    assert memory.hash.bias.grad.abs().sum() > 0
    assert queries.grad.abs().sum() > 0


def test_optimiser_steps_move_the_read_slots_towards_their_queries():
    torch.manual_seed(0)
    memory = HashMemory(8, 4, hash_bits=16, init_from_data=False, restart_every=0).train()  # the codebook term alone
    queries = torch.randn(32, 4)
    opt = torch.optim.Adam(memory.parameters(), lr=0.05)
    losses = []
    for _ in range(30):
        readout = memory(queries)
        opt.zero_grad()
        readout.loss.backward()
        opt.step()
        losses.append(readout.loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_eval_codes_are_cached_and_refreshed_when_weights_change():
    torch.manual_seed(0)
    memory = HashMemory(20, 8, hash_bits=16).eval()
    q = torch.randn(6, 8)
    memory(q)
    cached = memory.slot_codes.clone()
    memory(q)
    assert torch.equal(memory.slot_codes, cached)
    with torch.no_grad():
        memory.slots.mul_(-1)  # every code flips (up to the bias)
    readout = memory(q)
    torch.testing.assert_close(memory.slot_codes, memory.codes(memory.slots))
    assert not torch.equal(memory.slot_codes, cached)
    np.testing.assert_array_equal(readout.indices.numpy(), numpy_hamming(memory, q).argmin(1))


def test_eval_codes_refresh_after_load_state_dict():
    torch.manual_seed(0)
    a, b = HashMemory(20, 8).eval(), HashMemory(20, 8).eval()
    q = torch.randn(6, 8)
    b(q)
    b.load_state_dict(a.state_dict())
    assert torch.equal(b(q).indices, a(q).indices)


def test_eval_loss_is_zero():
    memory = HashMemory(10, 4).eval()
    assert memory(torch.randn(3, 4)).loss.item() == 0.0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_slots": 0, "feature_dim": 4}, "num_slots must be an integer >= 1, got 0"),
        ({"num_slots": 4, "feature_dim": 4, "addressing": "fuzzy"}, "addressing must be one of .* got 'fuzzy'"),
        ({"num_slots": 4, "feature_dim": 4, "addressing": "soft", "top_k": 5}, r"top_k must be <= num_slots \(4\) .* got 5"),
        ({"num_slots": 4, "feature_dim": 4, "temperature": 0}, "temperature must be > 0, got 0"),
        ({"num_slots": 4, "feature_dim": 4, "hash_bits": 2.5}, "hash_bits must be an integer >= 1, got 2.5"),
    ],
)
def test_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        HashMemory(**kwargs)


def test_rejects_query_of_wrong_size():
    with pytest.raises(ValueError, match=r"query must have shape \(Q, 4\), got \[3, 5\]"):
        HashMemory(10, 4)(torch.randn(3, 5))


def test_first_training_call_initialises_slots_from_the_batch_queries():
    torch.manual_seed(0)
    memory = HashMemory(num_slots=20, feature_dim=8).train()
    assert int(memory.initialized) == 0
    queries = torch.randn(50, 8)
    memory(queries)
    # every slot is one of the queries, no two slots the same query
    dist = torch.cdist(memory.slots.detach(), queries)
    assert torch.all(dist.min(dim=1).values < 1e-6)
    assert dist.argmin(dim=1).unique().numel() == 20
    assert int(memory.initialized) == 1
    before = memory.slots.detach().clone()
    memory(torch.randn(50, 8))  # a second call does not initialise again
    torch.testing.assert_close(memory.slots.detach(), before)


def test_eval_mode_and_loaded_models_are_never_reinitialised():
    torch.manual_seed(0)
    memory = HashMemory(num_slots=8, feature_dim=4).eval()
    before = memory.slots.detach().clone()
    memory(torch.randn(10, 4))
    torch.testing.assert_close(memory.slots.detach(), before)
    state = memory.state_dict()
    del state["initialized"]  # a model file written before data-dependent initialisation
    loaded = HashMemory(num_slots=8, feature_dim=4)
    loaded.load_state_dict(state)
    assert int(loaded.initialized) == 1
    loaded.train()(torch.randn(10, 4))
    torch.testing.assert_close(loaded.slots.detach(), before)


def test_unread_slots_are_moved_onto_queries_every_restart_every_calls():
    torch.manual_seed(0)
    memory = HashMemory(num_slots=6, feature_dim=4, hash_bits=16, init_from_data=False, restart_every=3).train()
    queries = torch.randn(30, 4)
    read = set()
    for _ in range(2):
        read |= set(memory(queries).indices.tolist())
    before = memory.slots.detach().clone()
    read |= set(memory(queries).indices.tolist())  # third call: restart after reading
    dead = sorted(set(range(6)) - read)
    assert dead, "the test needs a slot that no query reads"
    after = memory.slots.detach()
    kept = sorted(read)
    torch.testing.assert_close(after[kept], before[kept])
    assert torch.all(torch.cdist(after[dead], queries).min(dim=1).values < 1e-6)
    assert int(memory.calls) == 0 and float(memory.reads.sum()) == 0


def test_initialisation_and_restarts_keep_a_clustered_memory_in_use():
    # 32 well-separated clusters, 32 slots: random slots (the first release) leave most slots
    # unread; data initialisation + restarts end with nearly every slot in use
    torch.manual_seed(0)
    centres = 4 * torch.randn(32, 16)

    def batch():
        return centres[torch.randint(0, 32, (256,))] + 0.1 * torch.randn(256, 16)

    def used_after_training(**kwargs):
        torch.manual_seed(1)
        memory = HashMemory(num_slots=32, feature_dim=16, hash_bits=64, **kwargs).train()
        optimizer = torch.optim.Adam(memory.parameters(), lr=1e-2)
        for _ in range(60):
            readout = memory(batch())
            optimizer.zero_grad()
            readout.loss.backward()
            optimizer.step()
        return memory.eval()(batch()).indices.unique().numel()

    random_start = used_after_training(init_from_data=False, restart_every=0)
    kept_alive = used_after_training(init_from_data=True, restart_every=10)
    assert kept_alive >= 28, kept_alive
    assert random_start < kept_alive


def test_rejects_bad_restart_every():
    with pytest.raises(ValueError, match=r"restart_every must be an int >= 0 .* got -1"):
        HashMemory(4, 4, restart_every=-1)


def test_straight_through_gradient_equals_the_relaxed_softmax_gradient():
    """Hard read forward; backward through softmax(-E[Hamming] / T), with E[Hamming] written out
    from its definition (independent of the module): direction and magnitude, not just non-zero."""
    torch.manual_seed(0)
    memory = HashMemory(num_slots=12, feature_dim=6, hash_bits=16, temperature=2.0, init_from_data=False, restart_every=0).train()
    query = torch.randn(5, 6, requires_grad=True)
    g = torch.randn(5, 6)
    (memory(query).output * g).sum().backward()
    got_w, got_q = memory.hash.weight.grad.clone(), query.grad.clone()

    w = memory.hash.weight.detach().clone().requires_grad_(True)
    q = query.detach().clone().requires_grad_(True)
    p_q = torch.sigmoid(q @ w.t() + memory.hash.bias.detach())
    p_m = torch.sigmoid(memory.slots.detach() @ w.t() + memory.hash.bias.detach())
    expected_hamming = (p_q[:, None, :] * (1 - p_m[None]) + (1 - p_q[:, None, :]) * p_m[None]).sum(-1)
    soft = torch.softmax(-expected_hamming / 2.0, dim=1)
    ((soft @ memory.slots.detach()) * g).sum().backward()
    torch.testing.assert_close(got_w, w.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(got_q, q.grad, rtol=1e-4, atol=1e-6)
    assert got_w.abs().sum() > 1e-3
