"""SEED.md, "Custom Layers": the document's snippet with only the import changed."""
import lazytorch as torch
import lazytorch.nn as nn

# Define a custom layer
class CustomLayer(nn.Module):
    def __init__(self):
        super(CustomLayer, self).__init__()

    def forward(self, x):
        return x ** 2

# Use the custom layer
layer = CustomLayer()
x = torch.tensor([1.0, 2.0, 3.0])
output = layer(x)
print(output)
