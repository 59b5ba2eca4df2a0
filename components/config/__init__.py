"""The stack config: one validated model, read before any resource is declared."""
