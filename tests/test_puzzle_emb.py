"""Sparse puzzle embeddings: only the rows a batch touched move, by sign(grad) with decoupled decay."""

import torch

from hrmkit.model.puzzle_emb import CastedSparseEmbedding, SignSGDSparseEmbedding


def test_signsgd_updates_only_touched_rows_with_summed_duplicate_gradients():
    torch.manual_seed(0)
    emb = CastedSparseEmbedding(5, 3, init_std=1.0, cast_to=torch.float32).train()
    before = emb.weights.clone()
    optimizer = SignSGDSparseEmbedding(emb, lr=0.1, weight_decay=0.5)
    ids = torch.tensor([1, 3, 1])
    sink = emb.new_grad_sink(3)
    rows = emb(ids, sink)
    emb.record(ids, sink)
    # Row 1 appears twice with opposite-signed pulls on column 0: +2 and -3 sum to -1.
    weights = torch.tensor([[2.0, 1.0, -1.0], [1.0, -1.0, 0.0], [-3.0, 1.0, -1.0]])
    (rows * weights).sum().backward()
    optimizer.step()
    decay = 1 - 0.1 * 0.5
    expected = before.clone()
    expected[1] = before[1] * decay - 0.1 * torch.sign(torch.tensor([-1.0, 2.0, -2.0]))
    expected[3] = before[3] * decay - 0.1 * torch.sign(torch.tensor([1.0, -1.0, 0.0]))
    torch.testing.assert_close(emb.weights, expected)
    assert emb.pending == []


def test_a_forward_without_a_grad_sink_leaves_nothing_to_update():
    emb = CastedSparseEmbedding(4, 2, init_std=1.0, cast_to=torch.float32)
    emb.eval()
    emb(torch.tensor([0, 1]))
    emb.train()
    rows = emb(torch.tensor([2]))
    assert emb.pending == [] and not rows.requires_grad
    before = emb.weights.clone()
    SignSGDSparseEmbedding(emb, lr=1.0).step()
    assert torch.equal(emb.weights, before)


def test_a_grad_sink_changes_no_value_of_the_rows():
    emb = CastedSparseEmbedding(4, 3, init_std=1.0, cast_to=torch.bfloat16)
    ids = torch.tensor([3, 0, 3])
    assert torch.equal(emb(ids, emb.new_grad_sink(3)), emb.weights[ids].to(torch.bfloat16))
