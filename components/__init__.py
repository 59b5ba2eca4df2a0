"""The Hemma server, one folder per real part; imports only go downward.

main -> outputs -> proxy | postgres | host -> config -> apps -> foundation -> model
(``pyproject.toml`` holds the contract, and the test command checks it).
"""
