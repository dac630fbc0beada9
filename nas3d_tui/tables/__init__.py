"""Tabular benchmarks that ship with nas3d-tui (``engine.bench_table.SHIPPED_TABLES``): one JSON file each."""
