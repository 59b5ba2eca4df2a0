"""Hemma (hemma.hule.education) as code. See README.md."""

from components.stack import main

outputs = main()
