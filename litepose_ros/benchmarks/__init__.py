"""Benchmarks behind ``litepose bench``: each writes a Markdown page under docs/benchmarks/ of a source
checkout (./benchmarks/ from an installed package; ``--output`` chooses)."""
