"""The head of the small CPU `masseg run` configs the end-to-end tests write (run folder, device, data), so the
tests that run the whole pipeline agree on it; each appends its own [[member]], [fusion] and [sweep] tables."""
from __future__ import annotations

RUN_HEAD = """
[run]
out = "{out}"
device = "cpu"
threads = 2
[data]
root = "{root}"
split = "val"
protocol = "davis"
"""
