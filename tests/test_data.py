"""utils.data: datasets, samplers, default_collate (PyTorch's rules), the DataLoader in the
main process and with worker processes (same batches as num_workers=0), reproducible
shuffling, and host-side batching that compiles no kernels."""
from __future__ import annotations

import collections
import math
import os
import warnings

import numpy as np
import pytest

import lazytorch as torch
from lazytorch import debug
from lazytorch.utils.data import (
    BatchSampler,
    ChainDataset,
    ConcatDataset,
    DataLoader,
    Dataset,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
    Subset,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
    default_collate,
    default_convert,
    get_worker_info,
    random_split,
)


# ----------------------------------------------------------------------------- the seed script
class CustomDataset(Dataset):
    """The data-loading example of SEED.md, unchanged."""

    def __init__(self, data, labels):
        self.data = data
        self.labels = labels

    def __len__(self):
        return len(self.data)

    def __getitem__(self, idx):
        return self.data[idx], self.labels[idx]


def test_seed_data_loading_snippet():
    data = torch.randn(100, 10)
    labels = torch.randn(100, 1)
    dataset = CustomDataset(data, labels)
    dataloader = DataLoader(dataset, batch_size=10, shuffle=True)
    batches = list(dataloader)
    assert len(batches) == 10 == len(dataloader)
    seen = []
    for batch in batches:
        assert isinstance(batch, list) and len(batch) == 2
        x, y = batch
        assert x.shape == (10, 10) and y.shape == (10, 1)
        assert x.dtype == torch.float32
        seen.append(x.numpy())
    rows = np.concatenate(seen)
    # every sample exactly once, shuffled
    order = [int(np.argmin(np.abs(data.numpy() - r).sum(1))) for r in rows]
    assert sorted(order) == list(range(100)) and order != list(range(100))
    np.testing.assert_array_equal(rows, data.numpy()[order])


def test_batching_rows_compiles_no_kernels(monkeypatch):
    monkeypatch.setenv("LAZYTORCH_BACKEND", "c")
    data, labels = torch.randn(64, 5), torch.arange(64)
    data.numpy(), labels.numpy()
    debug.reset_stats()
    for loader in (DataLoader(CustomDataset(data, labels), batch_size=8, shuffle=True),
                   DataLoader(TensorDataset(data, labels), batch_size=8, shuffle=True)):
        for x, y in loader:
            assert x.shape[0] == y.shape[0] == 8
            np.testing.assert_array_equal(x.numpy(), data.numpy()[y.numpy()])
    assert debug.stats()["kernels_compiled"] == 0


# ----------------------------------------------------------------------------- datasets
def test_tensor_dataset_and_loader_contents():
    x = torch.tensor(np.arange(30, dtype=np.float32).reshape(10, 3))
    y = torch.arange(10)
    ds = TensorDataset(x, y)
    assert len(ds) == 10
    a, b = ds[4]
    assert a.tolist() == [12.0, 13.0, 14.0] and b.item() == 4
    batches = list(DataLoader(ds, batch_size=4))
    assert [bb[1].tolist() for bb in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    np.testing.assert_array_equal(batches[2][0].numpy(), np.arange(24, 30).reshape(2, 3))
    assert batches[0][1].dtype == torch.int64
    dl = DataLoader(ds, batch_size=4, drop_last=True)
    assert len(dl) == 2 and [bb[1].tolist() for bb in dl] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    with pytest.raises(AssertionError, match="Size mismatch between tensors"):
        TensorDataset(x, torch.arange(9))


def test_subset_concat_and_add():
    a = TensorDataset(torch.arange(5))
    b = TensorDataset(torch.arange(10, 13))
    c = a + b
    assert isinstance(c, ConcatDataset) and len(c) == 8 and c.cumulative_sizes == [5, 8]
    assert [c[i][0].item() for i in range(8)] == [0, 1, 2, 3, 4, 10, 11, 12]
    assert c[-1][0].item() == 12
    with pytest.raises(ValueError, match="absolute value of index should not exceed"):
        c[-9]
    s = Subset(c, [7, 0, 5])
    assert len(s) == 3 and [s[i][0].item() for i in range(3)] == [12, 0, 10]
    assert [bb[0].tolist() for bb in DataLoader(s, batch_size=2)] == [[12, 0], [10]]


def test_random_split():
    ds = TensorDataset(torch.arange(10))
    parts = random_split(ds, [3, 7], generator=torch.Generator().manual_seed(0))
    idx = [p.indices for p in parts]
    assert [len(i) for i in idx] == [3, 7] and sorted(idx[0] + idx[1]) == list(range(10))
    again = random_split(ds, [3, 7], generator=torch.Generator().manual_seed(0))
    assert [p.indices for p in again] == idx
    # fractions: floor, then the remainder round-robin from the first split
    parts = random_split(ds, [0.33, 0.33, 0.34])
    assert [len(p) for p in parts] == [4, 3, 3]
    with pytest.warns(UserWarning, match="Length of split at index 1 is 0"):
        random_split(TensorDataset(torch.arange(2)), [1.0, 0.0])
    with pytest.raises(ValueError, match="Sum of input lengths does not equal"):
        random_split(ds, [3, 3])
    with pytest.raises(ValueError, match="Fraction at index 0 is not between 0 and 1"):
        random_split(ds, [1.5, -0.5])


class Squares(IterableDataset):
    """0, 1, 4, ..., (n-1)^2, split among workers by get_worker_info()."""

    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = get_worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        return iter([i * i for i in range(start, self.n, step)])

    def __len__(self):
        return self.n


def test_iterable_dataset():
    dl = DataLoader(Squares(7), batch_size=3)
    assert [b.tolist() for b in dl] == [[0, 1, 4], [9, 16, 25], [36]]
    assert len(dl) == 3
    dl = DataLoader(Squares(7), batch_size=3, drop_last=True)
    assert [b.tolist() for b in dl] == [[0, 1, 4], [9, 16, 25]] and len(dl) == 2
    assert list(DataLoader(Squares(3), batch_size=None)) == [0, 1, 4]   # as PyTorch
    chained = ChainDataset([Squares(2), Squares(3)])
    assert list(DataLoader(chained, batch_size=None)) == [0, 1, 0, 1, 4]
    with pytest.raises(ValueError, match="expected unspecified shuffle option"):
        DataLoader(Squares(3), shuffle=True)


# ----------------------------------------------------------------------------- collate
Point = collections.namedtuple("Point", ["x", "y"])


def test_default_collate_rules():
    out = default_collate([1.5, 2.0])
    assert out.dtype == torch.float64 and out.tolist() == [1.5, 2.0]
    out = default_collate([1, 2])
    assert out.dtype == torch.int64
    assert default_collate([True, False]).dtype == torch.bool
    assert default_collate(["a", "b"]) == ["a", "b"]
    out = default_collate([np.float32(1), np.float32(2)])
    assert out.dtype == torch.float32
    out = default_collate([np.float64(1), np.float64(2)])
    assert out.dtype == torch.float64
    out = default_collate([np.zeros((2, 3), np.int32), np.ones((2, 3), np.int32)])
    assert out.shape == (2, 2, 3) and out.dtype == torch.int32
    out = default_collate([{"a": 1, "b": torch.zeros(2)}, {"a": 2, "b": torch.ones(2)}])
    assert set(out) == {"a", "b"} and out["a"].tolist() == [1, 2]
    assert out["b"].tolist() == [[0, 0], [1, 1]]
    out = default_collate([Point(1, 2.0), Point(3, 4.0)])
    assert isinstance(out, Point) and out.x.tolist() == [1, 3] and out.y.dtype == torch.float64
    out = default_collate([(1, "a"), (2, "b")])
    assert isinstance(out, list) and out[0].tolist() == [1, 2] and out[1] == ("a", "b")
    out = default_collate([[1, 2], [3, 4]])
    assert isinstance(out, list) and [t.tolist() for t in out] == [[1, 3], [2, 4]]
    out = default_collate([{"k": [torch.tensor(1.0), 2]}, {"k": [torch.tensor(3.0), 4]}])
    assert out["k"][0].tolist() == [1.0, 3.0] and out["k"][1].tolist() == [2, 4]
    with pytest.raises(RuntimeError, match="each element in list of batch should be of equal"):
        default_collate([[1, 2], [3]])
    with pytest.raises(RuntimeError, match="stack expects each tensor to be equal size"):
        default_collate([torch.zeros(2), torch.zeros(3)])
    with pytest.raises(TypeError, match="batch must contain tensors, numpy arrays, numbers"):
        default_collate([object(), object()])
    with pytest.raises(TypeError, match="batch must contain tensors"):
        default_collate([np.array(["a"]), np.array(["b"])])


def test_collate_of_computed_tensors_is_lazy_and_correct():
    base = torch.arange(6.0)
    out = default_collate([base * 2, base + 1])
    np.testing.assert_array_equal(out.numpy(), [np.arange(6) * 2, np.arange(6) + 1])


def test_default_convert():
    assert isinstance(default_convert(np.arange(3)), torch.Tensor)
    out = default_convert({"a": np.ones(2), "b": "s", "c": (np.zeros(1), 3)})
    assert isinstance(out["a"], torch.Tensor) and out["b"] == "s"
    assert isinstance(out["c"], list) and isinstance(out["c"][0], torch.Tensor)
    assert default_convert(3) == 3
    t = torch.ones(2)
    assert default_convert(t) is t


def test_torch_default_collate_parity():
    real = pytest.importorskip("torch")
    from torch.utils.data import default_collate as real_collate
    samples = [{"x": np.ones((2,), np.float32) * i, "n": i, "f": i / 2, "t": (i, "s")}
               for i in range(3)]
    ours, theirs = default_collate(samples), real_collate(samples)
    assert set(ours) == set(theirs)
    for k in ("x", "n", "f"):
        assert str(ours[k].dtype) == str(theirs[k].dtype)
        np.testing.assert_array_equal(ours[k].numpy(), theirs[k].numpy())
    assert type(ours["t"]) is type(theirs["t"]) and ours["t"][1] == theirs["t"][1]
    assert isinstance(real.zeros(1), real.Tensor)


# ----------------------------------------------------------------------------- samplers
def test_sequential_and_random_samplers():
    ds = list(range(10))
    assert list(SequentialSampler(ds)) == list(range(10))
    torch.manual_seed(3)
    a = list(RandomSampler(ds))
    torch.manual_seed(3)
    b = list(RandomSampler(ds))
    assert a == b and sorted(a) == list(range(10)) and a != list(range(10))
    g = torch.Generator().manual_seed(1)
    c = list(RandomSampler(ds, generator=g))
    assert c == list(RandomSampler(ds, generator=torch.Generator().manual_seed(1)))
    r = list(RandomSampler(ds, replacement=True, num_samples=100))
    assert len(r) == 100 and all(0 <= i < 10 for i in r) and len(set(r)) < 100
    s = list(RandomSampler(ds, num_samples=25))   # more than the dataset, no replacement
    assert len(s) == 25 and sorted(s[:10]) == list(range(10))
    assert len(RandomSampler(ds, num_samples=25)) == 25
    with pytest.raises(ValueError, match="num_samples should be a positive integer value"):
        RandomSampler(ds, num_samples=0)
    with pytest.raises(TypeError, match="replacement should be a boolean value"):
        RandomSampler(ds, replacement=1)


def test_subset_random_and_batch_samplers():
    s = list(SubsetRandomSampler([3, 5, 7], generator=torch.Generator().manual_seed(0)))
    assert sorted(s) == [3, 5, 7]
    assert list(BatchSampler(range(7), 3, False)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(BatchSampler(range(7), 3, True)) == [[0, 1, 2], [3, 4, 5]]
    assert len(BatchSampler(range(7), 3, False)) == 3 and len(BatchSampler(range(7), 3, True)) == 2
    with pytest.raises(ValueError, match="batch_size should be a positive integer value"):
        BatchSampler(range(3), 0, False)
    with pytest.raises(ValueError, match="drop_last should be a boolean value"):
        BatchSampler(range(3), 1, 0)
    dl = DataLoader(TensorDataset(torch.arange(6)), batch_sampler=[[5, 0], [2]])
    assert [b[0].tolist() for b in dl] == [[5, 0], [2]]


def test_weighted_random_sampler():
    w = [0.0, 1.0, 3.0, 0.0]
    g = torch.Generator().manual_seed(0)
    draws = list(WeightedRandomSampler(w, 4000, generator=g))
    counts = np.bincount(draws, minlength=4)
    assert counts[0] == counts[3] == 0
    assert abs(counts[2] / 4000 - 0.75) < 0.03
    no_rep = list(WeightedRandomSampler(w, 2, replacement=False))
    assert sorted(no_rep) == [1, 2]
    with pytest.raises(RuntimeError, match="cannot sample n_sample > prob_dist.size"):
        list(WeightedRandomSampler(w, 3, replacement=False))
    with pytest.raises(ValueError, match="weights should be a 1d sequence"):
        WeightedRandomSampler([[1.0]], 1)
    with pytest.raises(ValueError, match="num_samples should be a positive integer"):
        WeightedRandomSampler(w, 0)


# ----------------------------------------------------------------------------- DataLoader
def test_shuffle_reproducible_with_seed_and_generator():
    ds = TensorDataset(torch.arange(20))

    def order(**kw):
        return [i for b in DataLoader(ds, batch_size=6, shuffle=True, **kw) for i in b[0].tolist()]

    torch.manual_seed(7)
    a = order()
    torch.manual_seed(7)
    assert order() == a
    assert sorted(a) == list(range(20))
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert order(generator=g1) == order(generator=g2)
    assert order(generator=g1) != order(generator=torch.Generator().manual_seed(1))  # advanced


def test_loader_argument_errors():
    ds = TensorDataset(torch.arange(4))
    with pytest.raises(ValueError, match="sampler option is mutually exclusive with shuffle"):
        DataLoader(ds, sampler=SequentialSampler(ds), shuffle=True)
    with pytest.raises(ValueError, match="batch_sampler option is mutually exclusive"):
        DataLoader(ds, batch_sampler=[[0]], batch_size=2)
    with pytest.raises(ValueError, match="num_workers option should be non-negative"):
        DataLoader(ds, num_workers=-1)
    with pytest.raises(ValueError, match="prefetch_factor option could only be specified"):
        DataLoader(ds, prefetch_factor=2)
    with pytest.raises(ValueError, match="persistent_workers option needs num_workers > 0"):
        DataLoader(ds, persistent_workers=True)
    with pytest.raises(ValueError, match="mutually exclusive with drop_last"):
        DataLoader(ds, batch_size=None, drop_last=True)
    dl = DataLoader(ds, pin_memory=True)
    with pytest.raises(ValueError, match="batch_size attribute should not be set after"):
        dl.batch_size = 3
    if torch.cuda.is_available():
        assert [b[0].tolist() for b in dl] == [[0], [1], [2], [3]]
    else:   # PyTorch's warning: nothing to pin for
        with pytest.warns(UserWarning, match="'pin_memory' argument is set as true but no "
                                             "accelerator is found"):
            assert [b[0].tolist() for b in dl] == [[0], [1], [2], [3]]
    assert [x[0].item() for x in DataLoader(ds, batch_size=None)] == [0, 1, 2, 3]


# ----------------------------------------------------------------------------- workers
class WhoLoaded(Dataset):
    """Samples carry the pid of the process that loaded them."""

    def __init__(self, n):
        self.x = torch.randn(n, 3)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"x": self.x[i], "i": i, "pid": os.getpid()}


def _batches(dl):
    return [(b["x"].numpy().copy(), b["i"].tolist(), set(b["pid"].tolist())) for b in dl]


def test_workers_yield_the_same_batches_as_the_main_process():
    ds = WhoLoaded(53)
    main = _batches(DataLoader(ds, batch_size=5, shuffle=True,
                               generator=torch.Generator().manual_seed(11)))
    inits = []
    work = _batches(DataLoader(ds, batch_size=5, shuffle=True, num_workers=2,
                               generator=torch.Generator().manual_seed(11),
                               worker_init_fn=inits.append))
    assert len(main) == len(work) == 11
    for (xa, ia, _), (xb, ib, _) in zip(main, work):
        assert ia == ib
        np.testing.assert_array_equal(xa, xb)
    pids = set().union(*(p for *_, p in work))
    assert os.getpid() not in pids and len(pids) == 2   # two real worker processes
    assert inits == []   # worker_init_fn runs in the workers, not here


def _init_marks_seed(worker_id):
    info = get_worker_info()
    assert info.id == worker_id and info.num_workers == 2
    np.random.seed(info.seed % 2 ** 32)


class RandomInWorker(Dataset):
    def __len__(self):
        return 6

    def __getitem__(self, i):
        return torch.rand(1).item(), get_worker_info().seed


def test_worker_seeds_are_reproducible():
    def run():
        dl = DataLoader(RandomInWorker(), batch_size=2, num_workers=2,
                        generator=torch.Generator().manual_seed(5),
                        worker_init_fn=_init_marks_seed)
        return [(b[0].tolist(), b[1].tolist()) for b in dl]

    a, b = run(), run()
    assert a == b
    seeds = {s for _, ss in a for s in ss}
    assert len(seeds) == 2   # base_seed + worker id


def test_iterable_dataset_with_workers():
    got = [b.tolist() for b in DataLoader(Squares(10), batch_size=2, num_workers=2)]
    # worker 0 has 0,2,4,6,8; worker 1 has 1,3,5,7,9; batches alternate between them
    assert got == [[0, 4], [1, 9], [16, 36], [25, 49], [64], [81]]


class Exploding(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        if i == 2:
            raise ValueError("bad sample 2")
        return i


def test_worker_errors_are_reraised():
    dl = DataLoader(Exploding(), batch_size=1, num_workers=2)
    it = iter(dl)
    assert next(it).tolist() == [0] and next(it).tolist() == [1]
    with pytest.raises(ValueError, match="Caught ValueError in DataLoader worker process 0"):
        next(it)


def test_persistent_workers_two_epochs():
    ds = TensorDataset(torch.arange(12))
    dl = DataLoader(ds, batch_size=4, num_workers=2, persistent_workers=True)
    e1 = [b[0].tolist() for b in dl]
    e2 = [b[0].tolist() for b in dl]
    assert e1 == e2 == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    it = iter(dl)
    next(it)                               # an epoch abandoned half way
    assert [b[0].tolist() for b in dl] == e1
    dl._iterator._shutdown_workers()


def test_spawn_workers():
    x = torch.arange(20.0).reshape(10, 2)
    ds = TensorDataset(x, torch.arange(10))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dl = DataLoader(ds, batch_size=3, num_workers=2, multiprocessing_context="spawn")
        got = [(a.numpy().tolist(), b.tolist()) for a, b in dl]
    want = [(a.numpy().tolist(), b.tolist()) for a, b in DataLoader(ds, batch_size=3)]
    assert got == want and len(got) == math.ceil(10 / 3)
