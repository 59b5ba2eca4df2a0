"""The policy pack: ``pulumi preview --policy-pack policy`` (see README.md)."""
