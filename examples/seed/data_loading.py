"""SEED.md, "Data Loading": the document's snippet with only the import changed."""
import lazytorch as torch  # the document's earlier snippets imported torch

from lazytorch.utils.data import DataLoader, Dataset

# Custom dataset
class CustomDataset(Dataset):
    def __init__(self, data, labels):
        self.data = data
        self.labels = labels

    def __len__(self):
        return len(self.data)

    def __getitem__(self, idx):
        return self.data[idx], self.labels[idx]

# DataLoader
data = torch.randn(100, 10)
labels = torch.randn(100, 1)
dataset = CustomDataset(data, labels)
dataloader = DataLoader(dataset, batch_size=10, shuffle=True)

for batch in dataloader:
    print(batch)
