"""Makes notebooks/conftest.py the module notebooks.conftest, so that it never shadows tests/conftest.py."""
