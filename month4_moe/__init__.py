"""Month 4: Mixture of Experts - four specialists (Code / Math / Text / Chat)."""
