"""``python -m uk_depscan``."""

from uk_depscan.cli.main import main

main()
