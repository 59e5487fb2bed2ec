import pytest
import torch

from pipeline.engine.batches import TensorBatches


def test_each_epoch_is_a_new_permutation_of_all_rows():
    x = torch.arange(10)
    batches = TensorBatches(x, x * 2, batch_size=4, shuffle=True, seed=0)
    assert len(batches) == 3
    epochs = [torch.cat([b[0] for b in batches]) for _ in range(2)]
    for rows in epochs:
        assert sorted(rows.tolist()) == list(range(10))
    assert not torch.equal(epochs[0], epochs[1])
    for xb, yb in batches:
        assert torch.equal(yb, xb * 2)  # every tensor sliced with the same indices


def test_same_seed_same_batches():
    x = torch.arange(50)
    a = [b[0] for b in TensorBatches(x, batch_size=8, shuffle=True, seed=3)]
    b = [b[0] for b in TensorBatches(x, batch_size=8, shuffle=True, seed=3)]
    assert all(torch.equal(p, q) for p, q in zip(a, b))


def test_without_shuffle_batches_are_contiguous_slices():
    x = torch.arange(7)
    assert [b[0].tolist() for b in TensorBatches(x, batch_size=3)] == [[0, 1, 2], [3, 4, 5], [6]]


@pytest.mark.parametrize(
    ("n", "drop_last", "sizes"),
    [(9, "single", [4, 4]), (10, "single", [4, 4, 2]), (10, True, [4, 4]), (9, False, [4, 4, 1])],
)
def test_drop_last(n, drop_last, sizes):
    batches = TensorBatches(torch.arange(n), batch_size=4, drop_last=drop_last)
    assert [len(b[0]) for b in batches] == sizes and len(batches) == len(sizes)


def test_tensors_must_have_the_same_rows():
    with pytest.raises(ValueError, match="same number of rows"):
        TensorBatches(torch.zeros(3), torch.zeros(4), batch_size=2)


def test_sharding_gives_each_process_its_own_equal_share(monkeypatch):
    x = torch.arange(11)
    shares = []
    for rank in (0, 1):
        monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
        monkeypatch.setattr(torch.distributed, "get_rank", lambda r=rank: r)
        monkeypatch.setattr(torch.distributed, "get_world_size", lambda: 2)
        batches = TensorBatches(x, batch_size=2, shuffle=True, seed=5, shard=True)
        assert len(batches) == 3  # 5 rows each, batches of 2
        shares.append(torch.cat([b[0] for b in batches]))
    assert len(shares[0]) == len(shares[1]) == 5
    assert not set(shares[0].tolist()) & set(shares[1].tolist())  # disjoint shares


def test_without_a_process_group_sharding_changes_nothing():
    x = torch.arange(10)
    assert len(TensorBatches(x, batch_size=4, shard=True)) == 3
