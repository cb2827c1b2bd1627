"""lazytorch in one minute: eager-looking code, a lazy graph underneath, fused C kernels.

Run: python examples/compiler_tour.py
"""
import lazytorch as torch
from lazytorch import debug
from lazytorch.compiler import schedule
from lazytorch.ir.graph import Graph, format_graph
from lazytorch.ir.sites import site_of

# Tensors look and print like PyTorch's.
x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
b = torch.tensor([10.0, -20.0, 30.0])
print("x + b (broadcast):\n", x + b)
print("x.sum(1):", x.sum(1))
print("x.argmax(1):", x.argmax(1), " dtype:", x.argmax(1).dtype)

# Nothing runs until a value is needed: y is a pending graph of nodes.
y = (x * 2 + b).relu().sum(1)
print("\nThe IR of y, before anything runs (each line names the user's source line):")
print(format_graph(Graph([y.node]), comments=site_of))

# The schedule: the kernels realizing y would run. Here the whole chain fuses into one.
kernels = schedule(y)
print(f"\n{len(kernels)} kernel(s):", kernels)
print(kernels[0].source)
del kernels   # a Kernel holds y's inner nodes, and a realize stores every value still held

# Using the value realizes it: generate C, compile it (cached on disk), run it.
debug.reset_stats()
print("\ny =", y)
print("stats:", {k: v for k, v in debug.stats().items() if v})

# The same structure with new data reuses the compiled plan: nothing is compiled.
z = (torch.tensor([[0.5, 1.5, -2.0], [7.0, 8.0, 9.0]]) * 2 + b).relu().sum(1)
debug.reset_stats()
z_text = str(z)   # printing realizes z
print("z =", z_text, " plan cache hits:", debug.stats()["plan_cache_hits"],
      " kernels compiled:", debug.stats()["kernels_compiled"])

# Softmax written as a user would: a few kernels, each a loop nest in plain C.
logits = torch.randn(4, 8)
e = (logits - logits.max(-1, keepdim=True).values).exp()
probs = e / e.sum(-1, keepdim=True)
print("\nsoftmax kernels:", schedule(probs))
print("rows sum to one:", probs.sum(-1))
