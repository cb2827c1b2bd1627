"""The training step drawn in the README (docs/graph.svg):

    python tools/viz.py docs/graph_step.py --out docs/graph.svg
"""
import lazytorch as torch

torch.manual_seed(0)
x, y = torch.randn(64, 10), torch.randn(64, 1)
model = torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for _ in range(2):
    opt.zero_grad()
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    opt.step()
print(f"loss {loss.item():.4f}")
