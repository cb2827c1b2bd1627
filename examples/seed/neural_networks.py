"""SEED.md, "Neural Networks": the document's snippet with only the import changed."""
import lazytorch as torch
import lazytorch.nn as nn

# Define a simple model
class SimpleModel(nn.Module):
    def __init__(self):
        super(SimpleModel, self).__init__()
        self.fc = nn.Linear(10, 1)

    def forward(self, x):
        return self.fc(x)

# Instantiate and use the model
model = SimpleModel()
x = torch.randn(5, 10)
output = model(x)
print(output)
