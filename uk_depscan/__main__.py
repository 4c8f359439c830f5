"""``python -m uk_depscan``."""
from uk_depscan.cli import main

main()
