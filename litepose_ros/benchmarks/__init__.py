"""Benchmarks behind ``litepose bench``: each writes a Markdown page under docs/benchmarks/."""
