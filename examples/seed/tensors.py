"""SEED.md, "Tensors": the document's snippet with only the import changed."""
import lazytorch as torch

# Create tensors
x = torch.tensor([1, 2, 3])
y = torch.tensor([4, 5, 6])

# Operations
z = x + y
print(z)

# GPU tensors
x_gpu = x.to('cuda')
print(x_gpu)
