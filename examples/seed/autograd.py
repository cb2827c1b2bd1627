"""SEED.md, "Autograd": the document's snippet with only the import changed."""
import lazytorch as torch

# Automatic differentiation
x = torch.tensor(2.0, requires_grad=True)
y = x ** 2

y.backward()
print(x.grad)  # Gradient of y with respect to x
