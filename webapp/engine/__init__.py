"""The inference engine: worker processes, the scheduler that shares them, and what runs inside."""
