"""Live camera sessions over GET /ws (protocol v1, docs/protocol.md)."""
