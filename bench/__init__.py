"""``make bench``: the serving path measured against the usual dense-REST transformer and against the
in-process ceiling, on the same 127.0.0.1 stack the tests use (see docs/bench.md)."""
