"""The root filesystem a binary-compatible unikernel needs (``uk-depscan rootfs``)."""
