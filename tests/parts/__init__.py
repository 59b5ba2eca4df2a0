"""Real parts for tests that run the program's containers and SSH commands:
a private Docker engine, stand-in images, and an sshd with a sudo-capable user.
See README.md here; the fixtures are in tests.parts.fixtures."""
