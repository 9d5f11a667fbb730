"""A matrix product with torch; prints the result."""

import torch

a = torch.arange(6, dtype=torch.float32).reshape(2, 3)
print(f"predict: {(a @ a.T).tolist()} (torch {torch.__version__})")
