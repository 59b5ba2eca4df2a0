"""What every part builds on: providers, networks, container defaults, secrets, adoption."""
