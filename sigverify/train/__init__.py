"""Training, sampling, losses and evaluation (PyTorch, no Qt)."""
