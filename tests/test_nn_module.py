"""nn.Module, Parameter and the containers: registration, iteration, state dicts, modes,
conversion, hooks and repr, against PyTorch's documented behaviour (spelled out here)."""
from __future__ import annotations

import copy
import pickle
from collections import OrderedDict

import numpy as np
import pytest

import lazytorch as torch
import lazytorch.nn as nn
from lazytorch.ir.ops import Op


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 3)
        self.bn = nn.BatchNorm1d(3)
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(3, 2, bias=False))
        self.register_buffer("steps", torch.zeros(()))
        self.register_buffer("scratch", torch.zeros(2), persistent=False)
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return self.head(self.bn(self.fc1(x))) * self.scale


# --------------------------------------------------------------------------- Parameter
def test_parameter_basics():
    t = torch.randn(3)
    p = nn.Parameter(t)
    assert isinstance(p, torch.Tensor) and isinstance(p, nn.Parameter)
    assert p.requires_grad and p.is_leaf and p.grad_fn is None
    np.testing.assert_array_equal(p.detach().numpy(), t.numpy())
    assert not (t * 2).requires_grad          # the source tensor is not tracked
    assert (p * 2).requires_grad
    q = nn.Parameter(torch.ones(2), requires_grad=False)
    assert not q.requires_grad
    assert type(p * 2) is torch.Tensor        # op results are plain tensors


def test_parameter_repr():
    assert repr(nn.Parameter(torch.ones(2))) == \
        "Parameter containing:\ntensor([1., 1.], requires_grad=True)"
    assert repr(nn.Parameter(torch.ones(2), requires_grad=False)) == \
        "Parameter containing:\ntensor([1., 1.])"


def test_parameter_data_writes_through():
    p = nn.Parameter(torch.zeros(3))
    d = p.data
    assert not d.requires_grad
    d.add_(2)
    np.testing.assert_array_equal(p.detach().numpy(), [2, 2, 2])
    p.data[1] = 7
    np.testing.assert_array_equal(p.detach().numpy(), [2, 7, 2])
    assert p.requires_grad and p.is_leaf
    p.data = torch.ones(2, 2, dtype=torch.float64)
    assert p.shape == (2, 2) and p.dtype == torch.float64 and p.requires_grad
    (p * 3).sum().backward()
    np.testing.assert_array_equal(p.grad.numpy(), np.full((2, 2), 3.0))


def test_parameter_in_place_on_leaf_raises():
    p = nn.Parameter(torch.zeros(2))
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        p.add_(1)
    with torch.no_grad():
        p.add_(1)
    np.testing.assert_array_equal(p.detach().numpy(), [1, 1])


def test_parameter_deepcopy_is_independent():
    lin = nn.Linear(3, 2)
    lin2 = copy.deepcopy(lin)
    assert lin2.weight is not lin.weight and isinstance(lin2.weight, nn.Parameter)
    np.testing.assert_array_equal(lin2.weight.detach().numpy(), lin.weight.detach().numpy())
    lin2(torch.ones(1, 3)).sum().backward()
    assert lin2.weight.grad is not None and lin.weight.grad is None


def test_parameter_and_module_pickle():
    lin = nn.Linear(3, 2)
    copy_ = pickle.loads(pickle.dumps(lin))
    assert isinstance(copy_.weight, nn.Parameter) and copy_.weight.requires_grad
    np.testing.assert_array_equal(copy_.weight.detach().numpy(), lin.weight.detach().numpy())
    q = pickle.loads(pickle.dumps(nn.Parameter(torch.ones(2), requires_grad=False)))
    assert type(q) is nn.Parameter and not q.requires_grad


# --------------------------------------------------------------------------- registration
def test_registration_and_iteration_order():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["scale", "fc1.weight", "fc1.bias", "bn.weight", "bn.bias",
                     "head.1.weight"]
    assert [n for n, _ in net.named_buffers()] == [
        "steps", "scratch", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked"]
    assert [n for n, _ in net.named_children()] == ["fc1", "bn", "head"]
    assert [n for n, _ in net.named_modules()] == ["", "fc1", "bn", "head", "head.0", "head.1"]
    assert [n for n, _ in net.named_parameters(prefix="m", recurse=False)] == ["m.scale"]
    assert len(list(net.parameters())) == 6 and len(list(net.buffers(recurse=False))) == 2
    assert list(net.children())[0] is net.fc1
    assert net.get_submodule("head.1") is net.head[1]
    assert net.get_parameter("fc1.bias") is net.fc1.bias
    assert net.get_buffer("bn.running_var") is net.bn.running_var


def test_shared_parameters_and_modules_listed_once():
    shared = nn.Linear(2, 2)
    seq = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(list(seq.parameters())) == 2
    assert len(list(seq.named_parameters(remove_duplicate=False))) == 4
    assert [n for n, _ in seq.named_modules()] == ["", "0", "1"]
    assert [n for n, _ in seq.named_modules(remove_duplicate=False)] == ["", "0", "1", "2"]
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_setattr_rules_and_messages():
    lin = nn.Linear(2, 2)
    with pytest.raises(TypeError, match=r"cannot assign 'torch.FloatTensor' as parameter "
                                        r"'weight' \(torch.nn.Parameter or None expected\)"):
        lin.weight = torch.zeros(2, 2)
    with pytest.raises(KeyError, match="attribute 'weight' already exists"):
        lin.register_buffer("weight", torch.zeros(1))
    with pytest.raises(KeyError, match="buffer name can"):
        lin.register_buffer("a.b", torch.zeros(1))
    with pytest.raises(TypeError, match="cannot assign 'int' object to parameter 'p'"):
        lin.register_parameter("p", 3)
    with pytest.raises(AttributeError, match="'Linear' object has no attribute 'foo'"):
        _ = lin.foo
    lin.bias = None                       # a registered parameter may become None
    assert lin.bias is None and "bias" not in lin.state_dict()
    lin.extra = nn.Parameter(torch.ones(1))
    assert "extra" in dict(lin.named_parameters())
    del lin.extra
    assert "extra" not in dict(lin.named_parameters())
    lin.plain = 3                          # ordinary attributes stay ordinary
    assert lin.plain == 3 and "plain" not in lin.state_dict()

    class Early(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(1, 1)

    with pytest.raises(AttributeError, match=r"cannot assign module before "
                                             r"Module.__init__\(\) call"):
        Early()


# --------------------------------------------------------------------------- state dict
def test_state_dict_keys_order_and_detached():
    net = Net()
    sd = net.state_dict()
    assert list(sd) == ["scale", "steps", "fc1.weight", "fc1.bias", "bn.weight", "bn.bias",
                        "bn.running_mean", "bn.running_var", "bn.num_batches_tracked",
                        "head.1.weight"]
    assert isinstance(sd, OrderedDict)
    assert all(not v.requires_grad for v in sd.values())
    assert sd._metadata == OrderedDict([("", {"version": 1}), ("fc1", {"version": 1}),
                                        ("bn", {"version": 2}), ("head", {"version": 1}),
                                        ("head.0", {"version": 1}),
                                        ("head.1", {"version": 1})])
    kept = net.state_dict(keep_vars=True)
    assert kept["fc1.weight"] is net.fc1.weight
    assert list(net.state_dict(prefix="model."))[0] == "model.scale"


def test_load_state_dict_round_trip():
    a, b = Net(), Net()
    out = b.load_state_dict(a.state_dict())
    assert repr(out) == "<All keys matched successfully>"
    for (n, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        np.testing.assert_array_equal(x.numpy(), y.numpy(), err_msg=n)
    assert b.fc1.weight.requires_grad and b.fc1.weight.is_leaf
    x = torch.randn(5, 4)
    np.testing.assert_array_equal(a.eval()(x).detach().numpy(), b.eval()(x).detach().numpy())


def test_load_state_dict_errors():
    lin = nn.Linear(10, 2)
    sd = {"weight": torch.zeros(1, 10), "bias": torch.zeros(2), "extra": torch.zeros(1)}
    with pytest.raises(RuntimeError) as e:
        lin.load_state_dict(sd)
    assert str(e.value) == (
        'Error(s) in loading state_dict for Linear:\n\tUnexpected key(s) in state_dict: '
        '"extra". \n\tsize mismatch for weight: copying a param with shape '
        'torch.Size([1, 10]) from checkpoint, the shape in current model is '
        'torch.Size([2, 10]).')
    model = nn.Sequential(nn.Linear(10, 1))
    with pytest.raises(RuntimeError) as e:
        model.load_state_dict({"0.weight": torch.zeros(1, 10)})
    assert str(e.value) == ('Error(s) in loading state_dict for Sequential:\n\tMissing key(s) '
                            'in state_dict: "0.bias". ')
    res = lin.load_state_dict({"weight": torch.ones(2, 10), "junk": torch.ones(1)}, strict=False)
    assert res.missing_keys == ["bias"] and res.unexpected_keys == ["junk"]
    assert repr(res) == "_IncompatibleKeys(missing_keys=['bias'], unexpected_keys=['junk'])"
    np.testing.assert_array_equal(lin.weight.detach().numpy(), np.ones((2, 10)))
    with pytest.raises(RuntimeError, match="size mismatch for weight"):
        lin.load_state_dict({"weight": torch.ones(3, 10)}, strict=False)
    with pytest.raises(TypeError, match="Expected state_dict to be dict-like"):
        lin.load_state_dict([1, 2])


def test_load_state_dict_assign_and_old_batchnorm():
    lin = nn.Linear(2, 2)
    w = torch.ones(2, 2)
    lin.load_state_dict({"weight": w, "bias": torch.zeros(2)}, assign=True)
    assert isinstance(lin.weight, nn.Parameter) and lin.weight.requires_grad
    bn = nn.BatchNorm1d(3)
    sd = bn.state_dict()
    del sd["num_batches_tracked"]
    sd._metadata[""] = {"version": 1}     # checkpoints from before num_batches_tracked
    assert repr(bn.load_state_dict(sd)) == "<All keys matched successfully>"
    plain = dict(sd)                      # no metadata at all: also filled in
    assert repr(nn.BatchNorm1d(3).load_state_dict(plain)) == "<All keys matched successfully>"
    sd._metadata[""] = {"version": 2}
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: '
                                           '"num_batches_tracked"'):
        nn.BatchNorm1d(3).load_state_dict(sd)  # version 2 checkpoints must have it


# --------------------------------------------------------------------------- modes, grads
def test_train_eval_and_requires_grad():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net and not any(m.training for m in net.modules())
    net.train()
    assert net.head[0].training
    with pytest.raises(ValueError, match="training mode is expected to be boolean"):
        net.train("yes")
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())


def test_zero_grad():
    lin = nn.Linear(3, 2)
    lin(torch.ones(4, 3)).sum().backward()
    assert lin.weight.grad is not None
    lin.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(lin.weight.grad.numpy(), np.zeros((2, 3)))
    lin.zero_grad()
    assert lin.weight.grad is None and lin.bias.grad is None


def test_to_and_dtype_conversion_keep_parameter_objects():
    net = Net()
    w = net.fc1.weight
    assert net.double() is net
    assert net.fc1.weight is w and w.dtype == torch.float64 and w.requires_grad
    assert net.bn.running_mean.dtype == torch.float64
    assert net.bn.num_batches_tracked.dtype == torch.int64    # integers keep their dtype
    out = net(torch.randn(5, 4, dtype=torch.float64))
    assert out.dtype == torch.float64
    net.to(torch.float32)
    assert w.dtype == torch.float32
    net.to("cpu").to(torch.device("cpu")).cpu().float()
    net.half()
    assert w.dtype == torch.float16
    with pytest.raises(TypeError, match="nn.Module.to only accepts floating point or complex "
                                        "dtypes, but got desired dtype=torch.int64"):
        net.to(torch.int64)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            nn.Linear(2, 2).cuda()
        with pytest.raises(RuntimeError, match="CUDA"):
            nn.Linear(2, 2).to("cuda")


def test_apply_visits_children_first():
    net = Net()
    seen = []
    assert net.apply(lambda m: seen.append(type(m).__name__)) is net
    assert seen == ["Linear", "BatchNorm1d", "ReLU", "Linear", "Sequential", "Net"]


# --------------------------------------------------------------------------- hooks
def test_forward_hooks():
    lin = nn.Linear(2, 2)
    calls = []
    h1 = lin.register_forward_pre_hook(lambda m, args: (args[0] * 0,))
    h2 = lin.register_forward_hook(lambda m, args, out: calls.append(out.shape) or out + 1)
    out = lin(torch.ones(3, 2))          # input zeroed by the pre-hook, output + 1
    np.testing.assert_allclose(out.detach().numpy(),
                               np.tile(lin.bias.detach().numpy() + 1, (3, 1)), rtol=1e-6)
    assert calls == [(3, 2)]
    h1.remove()
    h2.remove()
    np.testing.assert_allclose(lin(torch.zeros(1, 2)).detach().numpy()[0],
                               lin.bias.detach().numpy(), rtol=1e-6)
    assert calls == [(3, 2)]


def test_forward_hooks_with_kwargs_prepend_and_always_call():
    class M(nn.Module):
        def forward(self, x, scale=1.0):
            if scale == 0:
                raise ValueError("boom")
            return x * scale

    m = M()
    order = []
    m.register_forward_pre_hook(lambda mod, args, kwargs: (args, {"scale": 3.0}),
                                with_kwargs=True)
    m.register_forward_hook(lambda mod, a, out: order.append("second"))
    m.register_forward_hook(lambda mod, a, out: order.append("first"), prepend=True)
    np.testing.assert_array_equal(m(torch.ones(2)).numpy(), [3.0, 3.0])
    assert order == ["first", "second"]
    m2 = M()
    seen = []
    with m2.register_forward_hook(lambda mod, a, out: seen.append(out), always_call=True):
        with pytest.raises(ValueError, match="boom"):
            m2(torch.ones(1), scale=0)
    assert seen == [None]
    assert not m2._forward_hooks


# --------------------------------------------------------------------------- containers
def test_sequential():
    a, b, c = nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)
    seq = nn.Sequential(a, b, c)
    assert len(seq) == 3 and seq[0] is a and seq[-1] is c
    sub = seq[1:]
    assert isinstance(sub, nn.Sequential) and list(sub) == [b, c]
    assert list(sub._modules) == ["1", "2"]
    x = torch.randn(4, 2)
    np.testing.assert_allclose(seq(x).detach().numpy(), c(b(a(x))).detach().numpy(), rtol=1e-6)
    seq.append(nn.Sigmoid())
    assert len(seq) == 4 and isinstance(seq[3], nn.Sigmoid)
    del seq[1]
    assert list(seq._modules) == ["0", "1", "2"] and seq[1] is c
    seq.insert(1, nn.Tanh())
    assert isinstance(seq[1], nn.Tanh) and len(seq) == 4
    named = nn.Sequential(OrderedDict([("conv", a), ("act", b)]))
    assert list(named.state_dict()) == ["conv.weight", "conv.bias"] and named.act is b
    with pytest.raises(IndexError, match="index 5 is out of range"):
        seq[5]
    assert len(seq + nn.Sequential(nn.ReLU())) == 5


def test_module_list_and_dict():
    ml = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(ml) == 3 and len(list(ml.parameters())) == 6
    ml.append(nn.ReLU())
    ml.extend([nn.Tanh()])
    assert isinstance(ml[-1], nn.Tanh) and len(ml[1:3]) == 2
    ml += [nn.ReLU()]
    assert len(ml) == 6
    md = nn.ModuleDict({"a": nn.Linear(1, 1), "b": nn.ReLU()})
    md["c"] = nn.Tanh()
    assert list(md.keys()) == ["a", "b", "c"] and "b" in md and len(md) == 3
    assert list(md.state_dict()) == ["a.weight", "a.bias"]
    assert md.pop("b").__class__ is nn.ReLU and "b" not in md


def test_parameter_list_and_dict():
    pl = nn.ParameterList([nn.Parameter(torch.ones(3)), torch.zeros(2, 2, dtype=torch.float64)])
    assert isinstance(pl[1], nn.Parameter) and len(pl) == 2
    assert [n for n, _ in pl.named_parameters()] == ["0", "1"]
    assert repr(pl) == ("ParameterList(\n    (0): Parameter containing: [torch.float32 of size 3]"
                        "\n    (1): Parameter containing: [torch.float64 of size 2x2]\n)")
    pd = nn.ParameterDict({"w": nn.Parameter(torch.ones(3))})
    assert repr(pd) == "ParameterDict(  (w): Parameter containing: [torch.FloatTensor of size 3])"
    assert list(pd.state_dict()) == ["w"]


# --------------------------------------------------------------------------- repr
def test_repr_of_nested_model():
    model = nn.Sequential(
        nn.Linear(10, 5), nn.ReLU(),
        nn.Sequential(nn.BatchNorm1d(5), nn.Dropout(0.2)),
        nn.LayerNorm(5), nn.GELU(approximate="tanh"),
        nn.ModuleList([nn.Tanh(), nn.Tanh(), nn.Sigmoid()]),
        nn.ModuleDict({"act": nn.ReLU(inplace=True)}),
        nn.Embedding(10, 3, padding_idx=0), nn.Softmax(dim=1), nn.CrossEntropyLoss())
    assert repr(model) == """Sequential(
  (0): Linear(in_features=10, out_features=5, bias=True)
  (1): ReLU()
  (2): Sequential(
    (0): BatchNorm1d(5, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
    (1): Dropout(p=0.2, inplace=False)
  )
  (3): LayerNorm((5,), eps=1e-05, elementwise_affine=True, bias=True)
  (4): GELU(approximate='tanh')
  (5): ModuleList(
    (0-1): 2 x Tanh()
    (2): Sigmoid()
  )
  (6): ModuleDict(
    (act): ReLU(inplace=True)
  )
  (7): Embedding(10, 3, padding_idx=0)
  (8): Softmax(dim=1)
  (9): CrossEntropyLoss()
)"""
    assert repr(Net()) == """Net(
  (fc1): Linear(in_features=4, out_features=3, bias=True)
  (bn): BatchNorm1d(3, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
  (head): Sequential(
    (0): ReLU()
    (1): Linear(in_features=3, out_features=2, bias=False)
  )
)"""
    assert repr(nn.Sequential()) == "Sequential()" and repr(nn.ModuleList()) == "ModuleList()"


# --------------------------------------------------------------------------- seed snippets
def test_seed_simple_model_and_custom_layer():
    class SimpleModel(nn.Module):
        def __init__(self):
            super(SimpleModel, self).__init__()
            self.fc = nn.Linear(10, 1)

        def forward(self, x):
            return self.fc(x)

    model = SimpleModel()
    x = torch.randn(5, 10)
    output = model(x)
    assert output.shape == (5, 1)
    ref = x.numpy() @ model.fc.weight.detach().numpy().T + model.fc.bias.detach().numpy()
    np.testing.assert_allclose(output.detach().numpy(), ref, rtol=1e-5, atol=1e-6)

    class CustomLayer(nn.Module):
        def __init__(self):
            super(CustomLayer, self).__init__()

        def forward(self, x):
            return x ** 2

    out = CustomLayer()(torch.tensor([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(out.numpy(), [1.0, 4.0, 9.0])


def test_training_loop_loss_falls_with_manual_sgd():
    torch.manual_seed(0)
    X, y = torch.randn(100, 10), torch.randn(100, 1)
    model = nn.Linear(10, 1)
    criterion = nn.MSELoss()
    losses = []
    for _ in range(30):
        model.zero_grad()
        loss = criterion(model(X), y)
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= 0.1 * p.grad
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.9
    assert model.weight.is_leaf and model.weight.requires_grad


def test_batchnorm_running_stats_ride_along_with_the_next_realize():
    bn = nn.BatchNorm1d(3)
    for _ in range(3):
        out = bn(torch.randn(8, 3))
        out.sum().item()                   # any realize also computes the pending stats
        assert bn.running_mean.node.op is Op.BUFFER
        assert bn.num_batches_tracked.node.op is Op.BUFFER
    assert bn.num_batches_tracked.item() == 3


def test_module_call_without_forward():
    with pytest.raises(NotImplementedError, match='missing the required "forward" function'):
        nn.Module()(1)


# --------------------------------------------------------------------------- torch parity
def test_parity_with_torch_reprs_and_state_dict_keys():
    ptorch = pytest.importorskip("torch")
    tnn = ptorch.nn

    def build(m):
        return m.Sequential(m.Linear(4, 3), m.BatchNorm1d(3), m.ReLU(), m.Dropout(0.5),
                            m.ModuleList([m.LayerNorm(3), m.LayerNorm(3), m.GroupNorm(1, 3)]),
                            m.ModuleDict({"e": m.Embedding(5, 3, padding_idx=1)}),
                            m.Bilinear(3, 3, 2), m.Flatten(), m.Unflatten(1, (1, 2)),
                            m.LeakyReLU(0.2), m.ELU(), m.Softplus(2.0), m.Hardtanh(-2.0, 2.0),
                            m.ReLU6(), m.SiLU(), m.LogSoftmax(dim=-1), m.BCEWithLogitsLoss(),
                            m.Identity(), m.PReLU(2), m.RMSNorm(2, eps=1e-6))

    ours, theirs = build(nn), build(tnn)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert dict(ours.state_dict()._metadata) == dict(theirs.state_dict()._metadata)
