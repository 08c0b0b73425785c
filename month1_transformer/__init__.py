"""Month 1: a mini-Transformer from scratch in PyTorch that really trains."""
