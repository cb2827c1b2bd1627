"""DataLoader: batches from a dataset, in the main process or in worker processes.

With num_workers > 0, real processes (multiprocessing, the platform's default start method or
`multiprocessing_context`) fetch and collate batches; tensors cross the process boundary as
numpy arrays (a reducer registered with multiprocessing's pickler), and the main process hands
batches out in sampler order, so the batches equal those of num_workers=0."""
from __future__ import annotations

import itertools
import math
import multiprocessing
import os
import queue
import random
import sys
import traceback
import warnings
from dataclasses import dataclass
from multiprocessing.reduction import ForkingPickler
from typing import Any, Callable

import numpy as np

from ...frontend.creation import Generator, default_generator, from_numpy, manual_seed, randint
from ...frontend.tensor import Tensor
from ...ir import dtypes as dt
from .collate import default_collate, default_convert, host_array, pin_memory
from .dataset import Dataset, IterableDataset
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler

__all__ = ["DataLoader", "get_worker_info", "WorkerInfo"]

_STATUS_INTERVAL = 1.0   # seconds between liveness checks while waiting on a queue
_WORKER_POLL = 0.1       # seconds between a worker's checks for shutdown


# ----------------------------------------------------------------------------- tensors over pipes
def _rebuild_tensor(arr: np.ndarray, dtype_name: str, requires_grad: bool) -> Tensor:
    t = from_numpy(arr) if arr.dtype == dt.by_name(dtype_name).np else \
        from_numpy(dt.astype(arr, dt.by_name(dtype_name)))
    if requires_grad:
        t.requires_grad_(True)
    return t


def _reduce_tensor(t: Tensor):
    arr = host_array(t)
    if arr is None:
        arr = t.detach()._array()
    return _rebuild_tensor, (np.ascontiguousarray(arr), t.dtype.name,
                             bool(t.requires_grad and t.is_leaf))


def _register_reducers() -> None:
    """Tensors (and subclasses) pickle as numpy arrays across worker processes."""
    todo = [Tensor]
    while todo:
        cls = todo.pop()
        ForkingPickler.register(cls, _reduce_tensor)
        todo.extend(cls.__subclasses__())


_register_reducers()


# ----------------------------------------------------------------------------- worker side
@dataclass(frozen=True)
class WorkerInfo:
    """What get_worker_info() returns inside a worker process."""

    id: int
    num_workers: int
    seed: int
    dataset: Any


_worker_info: WorkerInfo | None = None


def get_worker_info() -> WorkerInfo | None:
    """In a DataLoader worker process: its id, the number of workers, its seed and its copy of
    the dataset. In the main process: None."""
    return _worker_info


class ExceptionWrapper:
    """An exception raised in a worker, carried to the main process with its traceback."""

    def __init__(self, exc_info=None, where: str = "in background") -> None:
        exc_info = exc_info or sys.exc_info()
        self.exc_type = exc_info[0]
        self.exc_msg = "".join(traceback.format_exception(*exc_info))
        self.where = where

    def reraise(self):
        msg = f"Caught {self.exc_type.__name__} {self.where}.\nOriginal {self.exc_msg}"
        try:
            exc = self.exc_type(msg)
        except Exception:
            raise RuntimeError(msg) from None
        raise exc


@dataclass(frozen=True)
class _IterableDatasetStopIteration:
    worker_id: int


@dataclass(frozen=True)
class _ResumeIteration:
    pass


class _MapFetcher:
    def __init__(self, dataset, auto_collation: bool, collate_fn: Callable, drop_last: bool):
        self.dataset = dataset
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn

    def fetch(self, index):
        if self.auto_collation:
            many = getattr(self.dataset, "__getitems__", None)
            data = many(index) if callable(many) else [self.dataset[i] for i in index]
        else:
            data = self.dataset[index]
        return self.collate_fn(data)


class _IterableFetcher:
    def __init__(self, dataset, auto_collation: bool, collate_fn: Callable, drop_last: bool):
        self.dataset_iter = iter(dataset)
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn
        self.drop_last = drop_last
        self.ended = False

    def fetch(self, index):
        if self.ended:
            raise StopIteration
        if self.auto_collation:
            data = []
            for _ in index:
                try:
                    data.append(next(self.dataset_iter))
                except StopIteration:
                    self.ended = True
                    break
            if len(data) == 0 or (self.drop_last and len(data) < len(index)):
                raise StopIteration
        else:
            data = next(self.dataset_iter)
        return self.collate_fn(data)


def _fetcher(dataset, auto_collation, collate_fn, drop_last):
    cls = _IterableFetcher if isinstance(dataset, IterableDataset) else _MapFetcher
    return cls(dataset, auto_collation, collate_fn, drop_last)


def _seed_worker(seed: int) -> None:
    random.seed(seed)
    manual_seed(seed)
    np.random.seed(seed % (2 ** 32))


def _worker_loop(dataset, index_queue, data_queue, done_event, auto_collation, collate_fn,
                 drop_last, base_seed, init_fn, worker_id, num_workers) -> None:
    """A worker process: fetch and collate the batches whose indices arrive on index_queue."""
    global _worker_info
    from ...runtime.cpu import set_num_threads
    # as PyTorch's workers do: one thread each. It also keeps kernels from using the OpenMP
    # thread pool inherited through fork, which is unusable in the child (it hangs)
    set_num_threads(1)
    seed = base_seed + worker_id
    _seed_worker(seed)
    _worker_info = WorkerInfo(worker_id, num_workers, seed, dataset)
    where = f"in DataLoader worker process {worker_id}"
    init_error = None
    fetcher = None
    try:
        if init_fn is not None:
            init_fn(worker_id)
        fetcher = _fetcher(dataset, auto_collation, collate_fn, drop_last)
    except Exception:
        init_error = ExceptionWrapper(where=where)
    parent = os.getppid()
    ended = False
    while True:
        try:
            r = index_queue.get(timeout=_WORKER_POLL)
        except queue.Empty:
            # shut down, or the main process died: the None sent on shutdown may never come
            # (an iterator collected by the garbage collector closes its queues first)
            if done_event.is_set() or os.getppid() != parent:
                break
            continue
        if r is None:
            break
        if isinstance(r, _ResumeIteration):
            data_queue.put((r, None))
            ended = False
            if init_error is None:
                fetcher = _fetcher(dataset, auto_collation, collate_fn, drop_last)
            continue
        if done_event.is_set() or ended:
            continue
        idx, index = r
        if init_error is not None:
            data, init_error = init_error, None
        else:
            try:
                data = fetcher.fetch(index)
            except StopIteration:
                if isinstance(dataset, IterableDataset):
                    data = _IterableDatasetStopIteration(worker_id)
                    ended = True
                else:
                    data = ExceptionWrapper(where=where)
            except Exception:
                data = ExceptionWrapper(where=where)
        try:
            data_queue.put((idx, data))
        except Exception:    # an unpicklable batch: report it instead
            data_queue.put((idx, ExceptionWrapper(where=where)))
    data_queue.cancel_join_thread()
    data_queue.close()


# ----------------------------------------------------------------------------- main side
class _InfiniteConstantSampler(Sampler):
    """None, forever: the 'indices' of an iterable dataset."""

    def __iter__(self):
        while True:
            yield None


def _can_pin() -> bool:
    """Whether batches can be pinned (CUDA runs here); PyTorch's warning where not."""
    from ... import cuda
    if cuda.is_available():
        return True
    warnings.warn("'pin_memory' argument is set as true but no accelerator is found, then "
                  "device pinned memory won't be used.", UserWarning, stacklevel=3)
    return False


class _BaseIter:
    def __init__(self, loader: DataLoader) -> None:
        self._loader = loader
        self._dataset = loader.dataset
        self._auto_collation = loader._auto_collation
        self._index_sampler = loader._index_sampler
        self._drop_last = loader.drop_last
        self._collate_fn = loader.collate_fn
        self._num_yielded = 0
        self._base_seed = int(randint(0, 2 ** 62, (),
                                      generator=loader.generator or default_generator).item())
        self._sampler_iter = iter(self._index_sampler)
        self._pin = loader.pin_memory and _can_pin()

    def __iter__(self):
        return self

    def _next_index(self):
        return next(self._sampler_iter)

    def __len__(self) -> int:
        return len(self._loader)


class _SingleProcessIter(_BaseIter):
    def __init__(self, loader: DataLoader) -> None:
        super().__init__(loader)
        self._fetcher = _fetcher(self._dataset, self._auto_collation, self._collate_fn,
                                 self._drop_last)

    def __next__(self):
        data = self._fetcher.fetch(self._next_index())
        self._num_yielded += 1
        return pin_memory(data) if self._pin else data


class _MultiProcessIter(_BaseIter):
    """Worker processes fed round-robin through one index queue each; results come back on
    one queue and are handed out in the order the sampler produced them."""

    def __init__(self, loader: DataLoader) -> None:
        super().__init__(loader)
        _register_reducers()
        self._num_workers = loader.num_workers
        self._prefetch = loader.prefetch_factor
        self._persistent = loader.persistent_workers
        self._timeout = loader.timeout
        ctx = loader.multiprocessing_context
        if ctx is None:
            ctx = multiprocessing.get_context()
        elif isinstance(ctx, str):
            ctx = multiprocessing.get_context(ctx)
        self._data_queue = ctx.Queue()
        self._done_event = ctx.Event()
        self._index_queues = []
        self._workers = []
        for i in range(self._num_workers):
            iq = ctx.Queue()
            iq.cancel_join_thread()
            w = ctx.Process(target=_worker_loop, daemon=True, args=(
                self._dataset, iq, self._data_queue, self._done_event, self._auto_collation,
                self._collate_fn, self._drop_last, self._base_seed, loader.worker_init_fn, i,
                self._num_workers))
            w.start()
            self._index_queues.append(iq)
            self._workers.append(w)
        self._shutdown = False
        self._reset(loader, first=True)

    def _reset(self, loader: DataLoader, first: bool = False) -> None:
        self._sampler_iter = iter(self._index_sampler)
        self._num_yielded = 0
        self._send_idx = 0
        self._rcvd_idx = 0
        self._task_info: dict[int, tuple] = {}
        self._active = [True] * self._num_workers
        self._cycle = itertools.cycle(range(self._num_workers))
        if not first:    # persistent workers: drain the last epoch, restart iterable datasets
            for q in self._index_queues:
                q.put(_ResumeIteration())
            pending = self._num_workers
            while pending > 0:
                idx, _ = self._get_data()
                if isinstance(idx, _ResumeIteration):
                    pending -= 1
        for _ in range(self._prefetch * self._num_workers):
            self._put_index()

    def _put_index(self) -> None:
        try:
            index = self._next_index()
        except StopIteration:
            return
        for _ in range(self._num_workers):
            w = next(self._cycle)
            if self._active[w]:
                break
        else:
            return
        self._index_queues[w].put((self._send_idx, index))
        self._task_info[self._send_idx] = (w,)
        self._send_idx += 1

    def _try_get(self, timeout: float):
        try:
            return True, self._data_queue.get(timeout=timeout)
        except queue.Empty:
            dead = [w for i, w in enumerate(self._workers)
                    if self._active[i] and not w.is_alive()]
            if dead:
                pids = ", ".join(str(w.pid) for w in dead)
                self._shutdown_workers()
                raise RuntimeError(f"DataLoader worker (pid(s) {pids}) exited "
                                   "unexpectedly") from None
            return False, None

    def _get_data(self):
        if self._timeout > 0:
            ok, data = self._try_get(self._timeout)
            if not ok:
                self._shutdown_workers()
                raise RuntimeError(f"DataLoader timed out after {self._timeout} seconds")
            return data
        while True:
            ok, data = self._try_get(_STATUS_INTERVAL)
            if ok:
                return data

    def __next__(self):
        while True:
            while self._rcvd_idx < self._send_idx:
                info = self._task_info.get(self._rcvd_idx)
                if info is not None and (len(info) == 2 or self._active[info[0]]):
                    break
                self._task_info.pop(self._rcvd_idx, None)
                self._rcvd_idx += 1
            else:
                if not self._persistent:
                    self._shutdown_workers()
                raise StopIteration
            if len(self._task_info[self._rcvd_idx]) == 2:
                data = self._task_info.pop(self._rcvd_idx)[1]
                self._rcvd_idx += 1
                return self._process(data)
            idx, data = self._get_data()
            if isinstance(idx, _ResumeIteration):
                continue
            if isinstance(data, _IterableDatasetStopIteration):
                self._active[data.worker_id] = False
                if not self._persistent:
                    self._index_queues[data.worker_id].put(None)
                self._put_index()
                continue
            if idx != self._rcvd_idx:
                self._task_info[idx] += (data,)
            else:
                del self._task_info[idx]
                self._rcvd_idx += 1
                return self._process(data)

    def _process(self, data):
        self._put_index()
        self._num_yielded += 1
        if isinstance(data, ExceptionWrapper):
            data.reraise()
        return pin_memory(data) if self._pin else data

    def _shutdown_workers(self) -> None:
        if getattr(self, "_shutdown", True):
            return
        self._shutdown = True
        self._done_event.set()
        for q in self._index_queues:
            try:
                q.put(None)
            except Exception:
                pass
        for w in self._workers:
            w.join(timeout=5.0)
            if w.is_alive():
                w.terminate()
                w.join(timeout=1.0)
        for q in self._index_queues:
            q.cancel_join_thread()
            q.close()
        self._data_queue.cancel_join_thread()
        self._data_queue.close()

    def __del__(self) -> None:
        self._shutdown_workers()


class DataLoader:
    """Batches of a dataset: PyTorch's DataLoader (samplers, default collate, worker
    processes, reproducible shuffling with `generator` or lazytorch.manual_seed).

    pin_memory=True copies each batch's tensors to page-locked memory where CUDA can run
    (they go to the GPU faster); elsewhere it warns as PyTorch does and pins nothing."""

    _initialized = False

    def __init__(self, dataset: Dataset, batch_size: int | None = 1,
                 shuffle: bool | None = None, sampler=None, batch_sampler=None,
                 num_workers: int = 0, collate_fn: Callable | None = None,
                 pin_memory: bool = False, drop_last: bool = False, timeout: float = 0,
                 worker_init_fn: Callable | None = None, multiprocessing_context=None,
                 generator: Generator | None = None, *, prefetch_factor: int | None = None,
                 persistent_workers: bool = False, pin_memory_device: str = "",
                 in_order: bool = True) -> None:
        if num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 to "
                             "disable multiprocessing.")
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("prefetch_factor option could only be specified in "
                             "multiprocessing.let num_workers > 0 to enable multiprocessing, "
                             "otherwise set prefetch_factor to None.")
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        elif prefetch_factor is not None and prefetch_factor < 0:
            raise ValueError("prefetch_factor option should be non-negative")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        self.dataset = dataset
        self.num_workers = num_workers
        self.prefetch_factor = prefetch_factor
        self.pin_memory = pin_memory
        self.pin_memory_device = pin_memory_device
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.in_order = in_order
        if isinstance(dataset, IterableDataset):
            if isinstance(shuffle, bool) and shuffle:
                raise ValueError("DataLoader with IterableDataset: expected unspecified shuffle "
                                 f"option, but got shuffle={shuffle}")
            if sampler is not None:
                raise ValueError("DataLoader with IterableDataset: expected unspecified sampler "
                                 f"option, but got sampler={sampler}")
            if batch_sampler is not None:
                raise ValueError("DataLoader with IterableDataset: expected unspecified "
                                 f"batch_sampler option, but got batch_sampler={batch_sampler}")
        else:
            shuffle = bool(shuffle)
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, "
                                 "shuffle, sampler, and drop_last")
            batch_size = None
            drop_last = False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually "
                             "exclusive with drop_last")
        if sampler is None:
            if isinstance(dataset, IterableDataset):
                sampler = _InfiniteConstantSampler()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.generator = generator
        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn
        self.persistent_workers = persistent_workers
        self._iterator = None
        self._initialized = True

    def __setattr__(self, name: str, value) -> None:
        if self._initialized and name in ("batch_size", "batch_sampler", "sampler", "drop_last",
                                          "dataset", "persistent_workers"):
            raise ValueError(f"{name} attribute should not be set after "
                             f"{self.__class__.__name__} is initialized")
        super().__setattr__(name, value)

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None

    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def _get_iterator(self):
        if self.num_workers == 0:
            return _SingleProcessIter(self)
        return _MultiProcessIter(self)

    def __iter__(self):
        if self.persistent_workers and self.num_workers > 0:
            if self._iterator is None:
                self._iterator = self._get_iterator()
            else:
                self._iterator._reset(self)
            return self._iterator
        return self._get_iterator()

    def __len__(self) -> int:
        if isinstance(self.dataset, IterableDataset):
            n = len(self.dataset)
            if self.batch_size is not None:
                n = n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)
            return n
        return len(self._index_sampler)


