"""Who may use the server: access keys, quotas per key, and what an operator sees of them."""
