"""Fixtures of the module tests: ``go_oracle`` (see go_oracle_support.py)."""

from go_oracle_support import go_oracle

__all__ = ["go_oracle"]
