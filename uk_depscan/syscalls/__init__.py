"""syscalls stage."""
