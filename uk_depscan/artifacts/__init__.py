"""Build artifacts from a report: a Kconfig fragment, a Kraftfile and a Unikraft syscall library."""
