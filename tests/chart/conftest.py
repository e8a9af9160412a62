"""pytest fixtures of tests/chart (helpers live in chart_support.py, a unique module name)."""

from chart_support import render_fn, rendered

__all__ = ["render_fn", "rendered"]
