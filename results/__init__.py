"""The results schema (v1) and the atomic per-run parquet store."""
