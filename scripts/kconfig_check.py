#!/usr/bin/env python3
"""Apply a Kconfig fragment over a configured Unikraft application with kconfiglib, Unikraft's way.

Run by Unikraft's own build, which sets the environment its Config.uk needs (UK_BASE, UK_APP,
KCONFIG_CONFIG, the library directories …) and puts its vendored kconfiglib on PYTHONPATH:

    make -C UK_ROOT A=APP L=LIBS C=CONFIG O=BUILD scriptconfig SCRIPT=scripts/kconfig_check.py \
        SCRIPT_ARG=FRAGMENT UK_CONFIGLIB=UK_ROOT/support/kconfiglib     (env UK_DEPSCAN_KCHECK_OUT=OUT.json)

(``UK_CONFIGLIB``: RELEASE-0.17.0's Makefile puts it on scriptconfig's PYTHONPATH but only defines
``CONFIGLIB``; passing it makes the tree's own kconfiglib the one used.)

The application's .config is loaded as the base, then the fragment's assignments on top
(``load_config(replace=False)``, as merge_config.sh does); every symbol is evaluated and the result
written to a scratch file so kconfiglib emits its warnings (``select`` of a symbol whose direct
dependencies are unmet, assignments to undefined symbols).  Written to OUT.json: for each
``CONFIG_X=y`` and ``# CONFIG_X is not set`` line of the fragment, the value wanted, the value it
ends with, whether the symbol exists, and its direct dependencies; and the warnings the fragment
added.
"""

import json
import os
import re
import sys
import tempfile

import kconfiglib  # Unikraft's support/kconfiglib, via KPYTHON


def main() -> int:
    fragment = sys.argv[-1]
    out = os.environ["UK_DEPSCAN_KCHECK_OUT"]
    kconf = kconfiglib.Kconfig(os.path.join(os.environ["UK_BASE"], "Config.uk"), warn_to_stderr=False)
    kconf.load_config(os.environ["KCONFIG_CONFIG"])
    before = len(kconf.warnings)
    kconf.load_config(fragment, replace=False)
    with tempfile.TemporaryDirectory() as tmp:
        kconf.write_config(os.path.join(tmp, "config"))
    with open(fragment) as fh:
        text = fh.read()
    requested = [(n, "y") for n in re.findall(r"^CONFIG_(\w+)=y$", text, re.M)]
    requested += [(n, "n") for n in re.findall(r"^# CONFIG_(\w+) is not set$", text, re.M)]
    options = {}
    for name, want in requested:
        sym = kconf.syms.get(name)
        defined = sym is not None and bool(sym.nodes)
        options["CONFIG_" + name] = {
            "wanted": want,
            "defined": defined,
            "value": sym.str_value if defined else None,
            "depends_on": kconfiglib.expr_str(sym.direct_dep) if defined else None,
        }
    doc = {
        "kconfiglib": ".".join(map(str, kconfiglib.VERSION)),
        "options": options,
        "warnings": kconf.warnings[before:],
    }
    with open(out, "w") as fh:
        json.dump(doc, fh, indent=2, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
