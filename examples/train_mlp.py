"""Train a small MLP classifier: a PyTorch training script with only the imports changed.

Data in a Dataset and DataLoader, a model, a loss, an optimizer with a learning-rate schedule,
an evaluation loop under no_grad, and a checkpoint saved and loaded back.

Run: python examples/train_mlp.py   (a few seconds; the first run also compiles the kernels)
"""
import math
import os
import tempfile

import lazytorch as torch
import lazytorch.nn as nn
import lazytorch.optim as optim
from lazytorch.utils.data import DataLoader, TensorDataset, random_split

torch.manual_seed(0)
device = "cpu"

# --- Data: two interleaved spirals, 2-D points labelled by their arm ---------------------------
n_per_class = 256
t = torch.linspace(0.25, 3 * math.pi, n_per_class)
arms = [torch.stack([t * torch.cos(t + k * math.pi), t * torch.sin(t + k * math.pi)], dim=1)
        for k in range(2)]
X = torch.cat(arms) / 5 + 0.05 * torch.randn(2 * n_per_class, 2)
y = torch.cat([torch.full((n_per_class,), k, dtype=torch.long) for k in range(2)])

dataset = TensorDataset(X, y)
train_set, val_set = random_split(dataset, [384, 128],
                                  generator=torch.Generator().manual_seed(42))
train_loader = DataLoader(train_set, batch_size=64, shuffle=True, drop_last=True)
val_loader = DataLoader(val_set, batch_size=128)


# --- Model ---------------------------------------------------------------------------------------
class MLP(nn.Module):
    def __init__(self, in_features=2, hidden=64, num_classes=2):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x):
        return self.net(x)


model = MLP().to(device)
criterion = nn.CrossEntropyLoss()
optimizer = optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-4)
epochs = 15
scheduler = optim.lr_scheduler.OneCycleLR(optimizer, max_lr=5e-2, epochs=epochs,
                                          steps_per_epoch=len(train_loader))


def evaluate(model, loader):
    model.eval()
    correct, total, loss_sum = 0, 0, 0.0
    with torch.no_grad():
        for xb, yb in loader:
            logits = model(xb.to(device))
            loss_sum += criterion(logits, yb).item() * len(yb)
            correct += (logits.argmax(dim=1) == yb).sum().item()
            total += len(yb)
    return loss_sum / total, correct / total


# --- Training ------------------------------------------------------------------------------------
for epoch in range(epochs):
    model.train()
    running = 0.0
    for xb, yb in train_loader:
        xb, yb = xb.to(device), yb.to(device)
        optimizer.zero_grad()
        loss = criterion(model(xb), yb)
        loss.backward()
        optimizer.step()
        scheduler.step()
        running += loss.item()
    if epoch % 3 == 0 or epoch == epochs - 1:
        val_loss, val_acc = evaluate(model, val_loader)
        print(f"epoch {epoch:2d}  train loss {running / len(train_loader):.4f}  "
              f"val loss {val_loss:.4f}  val acc {val_acc:.3f}  "
              f"lr {scheduler.get_last_lr()[0]:.5f}")

# --- Checkpoint: save, load into a fresh model, check it predicts the same ----------------------
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "checkpoint.pt")
    torch.save({"epoch": epochs, "model_state_dict": model.state_dict(),
                "optimizer_state_dict": optimizer.state_dict(), "val_acc": val_acc}, path)
    checkpoint = torch.load(path, map_location=device)

restored = MLP()
restored.load_state_dict(checkpoint["model_state_dict"])
optimizer = optim.AdamW(restored.parameters(), lr=1e-2, weight_decay=1e-4)
optimizer.load_state_dict(checkpoint["optimizer_state_dict"])
restored.eval()
model.eval()
xb, _ = next(iter(val_loader))
with torch.no_grad():
    same = bool((restored(xb) == model(xb)).all())
print(f"checkpoint from epoch {checkpoint['epoch']} (val acc {checkpoint['val_acc']:.3f}) "
      f"restored; identical predictions: {same}")
