"""Benchmarks that run against the real model and a real server; see bench/README.md."""
