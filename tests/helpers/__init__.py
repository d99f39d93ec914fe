"""Helpers shared by more than one test directory and by the bench scripts.

Importable as ``helpers`` because tests/ is on sys.path: pytest puts it there
(``pythonpath = ["tests"]`` in pyproject.toml); a bench script inserts it itself.
"""
