"""elf stage."""
