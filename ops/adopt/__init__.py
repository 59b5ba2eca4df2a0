"""Adopting the running hand-made server (scripts/adopt; the steps are in cli.py)."""
