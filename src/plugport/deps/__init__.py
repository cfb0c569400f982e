"""Plugins' PyPI dependencies: the ``plugport.lock`` format (:mod:`.lockfile`), what a wheel
holds and whether a plugin may ship it (:mod:`.wheels`), locking with pip (:mod:`.locker`), and
the host's content-addressed wheel store (:mod:`.store`)."""
