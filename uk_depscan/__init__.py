"""uk-depscan: what must Unikraft provide for this ELF to work?"""

from __future__ import annotations

__version__ = "0.1.0"
