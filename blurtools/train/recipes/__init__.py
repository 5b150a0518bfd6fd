"""Per-model training recipes."""
