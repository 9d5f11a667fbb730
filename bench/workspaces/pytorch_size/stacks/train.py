"""Fits a linear model on scikit-learn's iris data with torch; prints the training accuracy."""

import torch
from sklearn.datasets import load_iris

features, labels = load_iris(return_X_y=True)
x, y = torch.tensor(features, dtype=torch.float32), torch.tensor(labels)
model = torch.nn.Linear(4, 3)
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
for _ in range(200):
    optimizer.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
accuracy = (model(x).argmax(dim=1) == y).float().mean().item()
print(f"train: accuracy {accuracy:.2f} (torch {torch.__version__})")
