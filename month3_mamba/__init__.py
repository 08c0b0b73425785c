"""Month 3: state-space models and Mamba - reading files of 100k+ tokens in constant memory."""
