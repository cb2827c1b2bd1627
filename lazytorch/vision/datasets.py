"""torchvision.datasets for data that ships with the installed packages (nothing downloads).

Digits: scikit-learn's handwritten digits (the UCI optical digits test set: 1,797 grey 8x8
images of 0-9 written by 13 people, in the order of the original file), as an image
classification dataset in torchvision's form.
"""
from __future__ import annotations

import importlib.util
import os
from typing import Any, Callable

import numpy as np

from ..frontend.creation import from_numpy
from ..utils.data import Dataset

__all__ = ["Digits"]


def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    """(images (1797, 8, 8) float64 counts 0..16, targets (1797,) int64) from scikit-learn's
    data file, read directly: importing sklearn itself (scipy and all) takes seconds."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        raise ImportError("Digits needs scikit-learn, whose package holds the data: pip install "
                          "scikit-learn (or the examples extra: pip install -e '.[examples]')")
    path = os.path.join(os.path.dirname(spec.origin), "datasets", "data", "digits.csv.gz")
    if os.path.exists(path):
        raw = np.loadtxt(path, delimiter=",")
        return raw[:, :-1].reshape(-1, 8, 8), raw[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits  # a layout this reader does not know
    bunch = load_digits()
    return bunch.images, bunch.target.astype(np.int64)


class Digits(Dataset):
    """scikit-learn's 8x8 digits: `train=True` gives the first 1,437 images (80%),
    `train=False` the last 360, so the split is fixed and the test images come from later
    writers in the file. A sample is (image, target): the image an 8x8 uint8 numpy array
    scaled to 0..255 (the source counts 0..16 pen strokes per cell) passed through
    `transform`, the target an int passed through `target_transform`.

    `root` and `download` are accepted for torchvision's signature and unused: the data comes
    from scikit-learn. `.data` (N, 8, 8 uint8) and `.targets` (N int64) are tensors, as in
    torchvision's MNIST."""

    classes = [f"{d} - {name}" for d, name in enumerate(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])]
    n_train = 1437

    def __init__(self, root: str | None = None, train: bool = True,
                 transform: Callable | None = None, target_transform: Callable | None = None,
                 download: bool = False):
        self.root, self.train = root, train
        self.transform, self.target_transform = transform, target_transform
        counts, labels = _load_digits()
        part = slice(0, self.n_train) if train else slice(self.n_train, None)
        images = np.rint(counts[part] * (255.0 / 16.0)).astype(np.uint8)
        self._images = images
        self._targets = labels[part]
        self.data = from_numpy(images)
        self.targets = from_numpy(self._targets)

    def __len__(self) -> int:
        return len(self._targets)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        img, target = self._images[index], int(self._targets[index])
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    @property
    def class_to_idx(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.classes)}

    def __repr__(self) -> str:
        lines = [f"Dataset {type(self).__name__}", f"    Number of datapoints: {len(self)}",
                 f"    Split: {'Train' if self.train else 'Test'}"]
        if self.transform is not None:
            lines.append(f"    StandardTransform\nTransform: {self.transform!r}")
        return "\n".join(lines)
