"""Holotrack: real-time full-body tracking in the browser."""
