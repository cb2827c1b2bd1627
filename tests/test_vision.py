"""lazytorch.vision: transforms against numpy written here and hand-computed images (torchvision's
semantics), Digits against scikit-learn's own loader, the models' parameter counts against
torchvision's published ones and their outputs against a PyTorch BasicBlock ResNet written here
(optional oracle)."""
from __future__ import annotations

import numpy as np
import pytest

import lazytorch as torch
from lazytorch.utils.data import DataLoader
from lazytorch.vision import datasets, models, transforms
from lazytorch.vision.transforms import functional as TF


@pytest.fixture(autouse=True)
def _interpreter_by_default(monkeypatch):
    """The transforms' tensor paths are small graphs: run them on the numpy interpreter
    (each new kernel structure would cost a C compile)."""
    monkeypatch.setenv("LAZYTORCH_BACKEND", "interp")


IMG = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.uint8)


# ----------------------------------------------------------------------------- ToTensor, Normalize
def test_to_tensor_scales_uint8_and_moves_channels_first():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (5, 4, 3), dtype=np.uint8)
    t = transforms.ToTensor()(rgb)
    assert t.dtype == torch.float32 and tuple(t.shape) == (3, 5, 4)
    np.testing.assert_allclose(t.numpy(), rgb.transpose(2, 0, 1) / 255.0, rtol=1e-6)
    grey = transforms.ToTensor()(IMG)
    assert tuple(grey.shape) == (1, 2, 3)
    np.testing.assert_allclose(grey.numpy()[0], IMG / 255.0, rtol=1e-6)
    f = rng.standard_normal((2, 2))   # float arrays keep their values and dtype
    t = transforms.ToTensor()(f)
    assert t.dtype == torch.float64
    np.testing.assert_array_equal(t.numpy()[0], f)
    with pytest.raises(ValueError, match="pic should be 2/3 dimensional. Got 4 dimensions."):
        transforms.ToTensor()(np.zeros((1, 2, 2, 1)))
    with pytest.raises(TypeError, match="pic should be PIL Image or ndarray"):
        transforms.ToTensor()(torch.zeros(1, 2, 2))


def test_normalize_per_channel():
    rng = np.random.default_rng(1)
    x = rng.random((2, 3, 4, 5)).astype(np.float32)
    mean, std = (0.1, 0.5, 0.9), (0.2, 0.3, 0.4)
    out = transforms.Normalize(mean, std)(torch.tensor(x))
    want = (x - np.array(mean).reshape(3, 1, 1)) / np.array(std).reshape(3, 1, 1)
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-6, atol=1e-6)
    pending = transforms.Normalize(mean, std)(torch.tensor(x) * 1.0)   # a graph, not data
    np.testing.assert_allclose(pending.numpy(), want, rtol=1e-6, atol=1e-6)
    t = torch.tensor(x[0])
    same = transforms.Normalize(mean, std, inplace=True)(t)
    assert same is t
    np.testing.assert_allclose(t.numpy(), want[0], rtol=1e-6, atol=1e-6)
    with pytest.raises(TypeError, match="Input tensor should be a float tensor. Got "
                                        "torch.int64."):
        transforms.Normalize((0,), (1,))(torch.zeros(1, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="std evaluated to zero after conversion to "
                                         "torch.float32"):
        transforms.Normalize((0,), (0,))(torch.zeros(1, 2, 2))
    with pytest.raises(ValueError, match=r"Expected tensor to be a tensor image of size "
                                         r"\(..., C, H, W\)"):
        transforms.Normalize((0,), (1,))(torch.zeros(2, 2))
    with pytest.raises(TypeError, match="img should be Tensor Image"):
        transforms.Normalize((0,), (1,))(IMG)


# ----------------------------------------------------------------------------- pad, crop, flip
# IMG padded by (left 2, top 1, right 0, bottom 1), worked out by hand per mode
PADDED = {
    "constant": [[9, 9, 9, 9, 9], [9, 9, 1, 2, 3], [9, 9, 4, 5, 6], [9, 9, 9, 9, 9]],
    "edge": [[1, 1, 1, 2, 3], [1, 1, 1, 2, 3], [4, 4, 4, 5, 6], [4, 4, 4, 5, 6]],
    "reflect": [[6, 5, 4, 5, 6], [3, 2, 1, 2, 3], [6, 5, 4, 5, 6], [3, 2, 1, 2, 3]],
    "symmetric": [[2, 1, 1, 2, 3], [2, 1, 1, 2, 3], [5, 4, 4, 5, 6], [5, 4, 4, 5, 6]],
}


@pytest.mark.parametrize("mode", list(PADDED))
def test_pad_modes_on_arrays_and_tensors(mode):
    want = np.array(PADDED[mode])
    out = TF.pad(IMG, (2, 1, 0, 1), fill=9, padding_mode=mode)
    assert isinstance(out, np.ndarray) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, want)
    t = TF.pad(torch.tensor(IMG.astype(np.float32)).reshape(1, 2, 3), (2, 1, 0, 1), fill=9,
               padding_mode=mode)
    np.testing.assert_array_equal(t.numpy()[0], want)
    hwc = TF.pad(np.stack([IMG, IMG + 10], -1), (2, 1, 0, 1), fill=9, padding_mode=mode)
    np.testing.assert_array_equal(hwc[..., 0], want)


def test_pad_arguments():
    np.testing.assert_array_equal(TF.pad(IMG, 1), np.pad(IMG, 1))      # int: all four sides
    np.testing.assert_array_equal(TF.pad(IMG, [2, 1]),                 # (left/right, top/bottom)
                                  np.pad(IMG, ((1, 1), (2, 2))))
    rgb = np.zeros((1, 1, 3), np.uint8)
    np.testing.assert_array_equal(TF.pad(rgb, 1, fill=(1, 2, 3))[0, 0], [1, 2, 3])
    with pytest.raises(ValueError, match="Padding must be an int or a 1, 2, or 4 element "
                                         "tuple, not a 3 element tuple"):
        TF.pad(IMG, (1, 2, 3))
    with pytest.raises(ValueError, match="Padding mode should be either constant, edge, "
                                         "reflect or symmetric"):
        TF.pad(IMG, 1, padding_mode="wrap")


def test_crop_and_hflip():
    img = np.arange(20, dtype=np.uint8).reshape(4, 5)
    np.testing.assert_array_equal(TF.crop(img, 1, 2, 2, 3), img[1:3, 2:5])
    out = TF.crop(img, -1, 3, 2, 3)          # outside the image: zeros, as torchvision
    np.testing.assert_array_equal(out, [[0, 0, 0], [3, 4, 0]])
    t = torch.tensor(img.astype(np.float32)).reshape(1, 4, 5)
    np.testing.assert_array_equal(TF.crop(t, -1, 3, 2, 3).numpy()[0], [[0, 0, 0], [3, 4, 0]])
    np.testing.assert_array_equal(TF.hflip(img), img[:, ::-1])
    np.testing.assert_array_equal(TF.hflip(t).numpy()[0], img[:, ::-1])
    assert TF.get_dimensions(img) == [1, 4, 5]
    assert TF.get_dimensions(np.zeros((4, 5, 3))) == [3, 4, 5]
    assert TF.get_dimensions(t) == [1, 4, 5]


# ----------------------------------------------------------------------------- random transforms
def test_random_crop_draws_torchvision_offsets_from_the_seeded_generator():
    img = np.arange(64, dtype=np.uint8).reshape(8, 8)
    crop = transforms.RandomCrop(8, padding=2)
    padded = np.pad(img, 2)
    seen = set()
    for seed in range(40):
        torch.manual_seed(seed)
        out = crop(img)
        torch.manual_seed(seed)     # torchvision's get_params: top, then left, each randint
        i = torch.randint(0, 12 - 8 + 1, size=(1,)).item()
        j = torch.randint(0, 12 - 8 + 1, size=(1,)).item()
        np.testing.assert_array_equal(out, padded[i:i + 8, j:j + 8])
        seen.add((i, j))
    assert len(seen) > 12          # the offsets cover the 25 windows, not one
    t = torch.tensor(img.astype(np.float32)).reshape(1, 8, 8)
    torch.manual_seed(3)
    a = crop(t).numpy()[0]
    torch.manual_seed(3)
    np.testing.assert_array_equal(a, crop(img))   # tensors draw the same windows
    with pytest.raises(ValueError, match=r"Required crop size \(9, 9\) is larger than input "
                                         r"image size \(8, 8\)"):
        transforms.RandomCrop(9)(img)
    out = transforms.RandomCrop((10, 9), pad_if_needed=True)(img)
    assert out.shape == (10, 9)


def test_random_horizontal_flip_probability_and_seed():
    img = np.arange(6, dtype=np.uint8).reshape(2, 3)
    np.testing.assert_array_equal(transforms.RandomHorizontalFlip(p=1.0)(img), img[:, ::-1])
    np.testing.assert_array_equal(transforms.RandomHorizontalFlip(p=0.0)(img), img)
    flip = transforms.RandomHorizontalFlip()
    torch.manual_seed(0)
    first = [bool((flip(img) != img).any()) for _ in range(400)]
    torch.manual_seed(0)
    again = [bool((flip(img) != img).any()) for _ in range(400)]
    assert first == again
    assert 150 < sum(first) < 250        # binomial(400, 0.5): 5 standard deviations


def test_compose_applies_in_order():
    t = transforms.Compose([transforms.RandomCrop(2, padding=0), transforms.ToTensor(),
                            transforms.Normalize((0.5,), (0.5,))])
    out = t(np.full((2, 2), 255, np.uint8))
    np.testing.assert_allclose(out.numpy(), np.ones((1, 2, 2)), rtol=1e-6)
    assert "RandomCrop" in repr(t) and "Normalize" in repr(t)


# ----------------------------------------------------------------------------- Resize
def test_resize_size_rule():
    """An int sets the shorter edge and keeps the aspect ratio (truncating the longer)."""
    assert transforms.Resize(3)(np.zeros((6, 10), np.uint8)).shape == (3, 5)
    assert transforms.Resize(3)(np.zeros((10, 7), np.uint8)).shape == (4, 3)
    assert transforms.Resize([4, 2])(np.zeros((10, 7), np.uint8)).shape == (4, 2)
    assert transforms.Resize(3, max_size=4)(np.zeros((6, 10), np.uint8)).shape == (2, 4)
    assert tuple(transforms.Resize(3)(torch.zeros(2, 6, 10)).shape) == (2, 3, 5)
    with pytest.raises(TypeError, match="Size should be int or sequence"):
        transforms.Resize(2.5)


def test_resize_values():
    """Hand-worked cases: shrinking 2x2 to 1x1 with antialias averages all four pixels;
    nearest doubling repeats each pixel."""
    img = np.array([[0.0, 1.0], [2.0, 5.0]])
    np.testing.assert_allclose(transforms.Resize(1)(img), [[2.0]])
    t = transforms.Resize(1)(torch.tensor(img.reshape(1, 2, 2)))
    np.testing.assert_allclose(t.numpy(), [[[2.0]]])
    near = transforms.Resize(4, interpolation=transforms.InterpolationMode.NEAREST)
    np.testing.assert_array_equal(near(IMG[:, :2]), np.repeat(np.repeat(IMG[:, :2], 2, 0), 2, 1))


@pytest.mark.parametrize("size,antialias", [((3, 4), True), ((5, 3), False), ((11, 13), True)])
def test_resize_matches_pytorch(size, antialias):
    tt = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x = rng.random((3, 7, 9)).astype(np.float32)
    want = tt.nn.functional.interpolate(tt.tensor(x)[None], size=size, mode="bilinear",
                                        align_corners=False, antialias=antialias)[0].numpy()
    out = transforms.Resize(size, antialias=antialias)(torch.tensor(x))
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-5, atol=1e-6)
    arr = transforms.Resize(size, antialias=antialias)(x.transpose(1, 2, 0))   # HxWxC array
    np.testing.assert_allclose(arr, want.transpose(1, 2, 0), rtol=1e-5, atol=1e-6)
    u8 = (x * 255).astype(np.uint8)
    want8 = tt.nn.functional.interpolate(tt.tensor(u8.astype(np.float32))[None], size=size,
                                         mode="bilinear", antialias=antialias)[0].numpy()
    out8 = transforms.Resize(size, antialias=antialias)(torch.tensor(u8))
    assert out8.dtype == torch.uint8
    np.testing.assert_array_equal(out8.numpy(), np.round(want8).astype(np.uint8))


# ----------------------------------------------------------------------------- Digits
def test_digits_matches_scikit_learn():
    sk = pytest.importorskip("sklearn.datasets")
    ref = sk.load_digits()
    train, test = datasets.Digits(train=True), datasets.Digits(train=False)
    assert (len(train), len(test)) == (1437, 360)
    img, target = train[5]
    assert img.dtype == np.uint8 and img.shape == (8, 8)
    np.testing.assert_array_equal(img, np.rint(ref.images[5] * 255 / 16))
    assert target == ref.target[5]
    img, target = test[-1]
    np.testing.assert_array_equal(img, np.rint(ref.images[-1] * 255 / 16))
    assert target == ref.target[-1]
    np.testing.assert_array_equal(test.targets.numpy(), ref.target[1437:])
    assert tuple(train.data.shape) == (1437, 8, 8) and train.data.dtype == torch.uint8


def test_digits_transforms_and_loader():
    ds = datasets.Digits(train=False, transform=transforms.ToTensor(),
                         target_transform=lambda y: y + 100)
    img, target = ds[0]
    assert tuple(img.shape) == (1, 8, 8) and img.dtype == torch.float32
    assert 100 <= target < 110
    np.testing.assert_allclose(img.numpy()[0], ds.data.numpy()[0] / 255, rtol=1e-6)
    x, y = next(iter(DataLoader(ds, batch_size=16)))
    assert tuple(x.shape) == (16, 1, 8, 8) and tuple(y.shape) == (16,)
    np.testing.assert_array_equal(y.numpy(), ds.targets.numpy()[:16] + 100)


# ----------------------------------------------------------------------------- models
def n_params(m) -> int:
    return sum(p.numel() for p in m.parameters())


def basic_resnet_params(in_ch, width, layers, num_classes):
    """Parameters of a BasicBlock ResNet with a 3x3 stem, counted from the design: 3x3 convs
    without bias, BN weight and bias, a 1x1 conv + BN shortcut where the width changes."""
    conv = lambda k, a, b: k * k * a * b    # noqa: E731
    total = conv(3, in_ch, width) + 2 * width
    c = width
    for i, blocks in enumerate(layers):
        w = width * 2 ** i
        for b in range(blocks):
            total += conv(3, c, w) + 2 * w + conv(3, w, w) + 2 * w
            if c != w or (b == 0 and i > 0):
                total += conv(1, c, w) + 2 * w
            c = w
    return total + c * num_classes + num_classes


def test_resnet_parameter_counts():
    # torchvision's published counts for resnet18 and resnet34
    assert n_params(models.resnet18()) == 11_689_512
    assert n_params(models.resnet34()) == 21_797_672
    small = models.resnet_small(num_classes=10, in_channels=1)
    assert n_params(small) == basic_resnet_params(1, 16, [2, 2, 2], 10)
    keys = set(models.resnet18().state_dict())
    assert {"conv1.weight", "bn1.running_mean", "layer1.1.bn2.num_batches_tracked",
            "layer2.0.downsample.0.weight", "layer4.0.downsample.1.bias", "fc.weight"} <= keys
    assert not any(k.startswith("layer1.0.downsample") for k in keys)
    z = models.resnet_small(zero_init_residual=True)
    assert float(z.layer1[0].bn2.weight.abs().sum()) == 0.0


def test_lenet():
    for size in (8, 28):
        m = models.LeNet(num_classes=10, in_channels=1, image_size=size)
        assert tuple(m(torch.randn(2, 1, size, size)).shape) == (2, 10)
        side = size // 4
        assert n_params(m) == (25 * 6 + 6) + (25 * 6 * 16 + 16) + (16 * side * side * 120 + 120) \
            + (120 * 84 + 84) + (84 * 10 + 10)
    with pytest.raises(ValueError, match="image_size should be a positive multiple of 4"):
        models.LeNet(image_size=10)


def _torch_resnet_small(tt):
    """torchvision's BasicBlock ResNet with a 3x3 stem, written in PyTorch: the oracle."""
    nn = tt.nn

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU()
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                                nn.BatchNorm2d(cout))

        def forward(self, x):
            out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
            return self.relu(out + (x if self.downsample is None else self.downsample(x)))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 16, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(16)
            self.relu = nn.ReLU()
            self.layer1 = nn.Sequential(Block(16, 16, 1), Block(16, 16, 1))
            self.layer2 = nn.Sequential(Block(16, 32, 2), Block(32, 32, 1))
            self.layer3 = nn.Sequential(Block(32, 64, 2), Block(64, 64, 1))
            self.fc = nn.Linear(64, 10)

        def forward(self, x):
            x = self.relu(self.bn1(self.conv1(x)))
            x = self.layer3(self.layer2(self.layer1(x)))
            return self.fc(x.mean((2, 3)))

    return Net()


def test_resnet_small_matches_pytorch(backend):
    tt = pytest.importorskip("torch")
    tt.manual_seed(0)
    ref = _torch_resnet_small(tt)
    ours = models.resnet_small(num_classes=10, in_channels=1)
    assert set(ours.state_dict()) == set(ref.state_dict())
    ours.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ref.state_dict().items()})
    x = np.random.default_rng(3).standard_normal((4, 1, 8, 8)).astype(np.float32)
    for mode in ("train", "eval"):
        getattr(ref, mode)()
        getattr(ours, mode)()
        want = ref(tt.tensor(x)).detach().numpy()
        np.testing.assert_allclose(ours(torch.tensor(x)).detach().numpy(), want, rtol=1e-4,
                                   atol=1e-4)
    np.testing.assert_allclose(ours.bn1.running_mean.numpy(), ref.bn1.running_mean.numpy(),
                               rtol=1e-5, atol=1e-6)
