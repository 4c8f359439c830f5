"""Persistent state the tool keeps between runs, all of it optional and none of it trusted.

* :mod:`uk_depscan.store.identity` — what an analysed object *is*: the sha256 of its bytes
  (:func:`~uk_depscan.store.identity.object_identity`), memoised per file stamp.  The scan cache
  and the corpus database key everything on it.
* :mod:`uk_depscan.store.db` — opening an SQLite database the tool owns: regular files only,
  schema checked object by object before any use.
* :mod:`uk_depscan.store.cache` — the on-disk cache (``uk-depscan cache info|clear``).
"""
