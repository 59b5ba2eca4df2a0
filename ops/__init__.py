"""Operator tools that work from the hemma stack's outputs: ``ops.doctor`` and ``ops.tunnel``.

Standard library only: they run on the operator's machine with a bare Python 3.11,
without the project's venv.
"""
