"""Month 6: the Enterprise Hybrid Assistant."""
