"""unikraft stage."""
