"""Hemma (hemma.hule.education) as code. See README.md."""

from components.main import main

outputs = main()
