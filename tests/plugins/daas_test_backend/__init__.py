"""A backend that lives in the tests: the proof that a backend is one folder plus an entry point.

With `tests/plugins` on a hub's PYTHONPATH, importlib.metadata finds `daas_test_backend-0.dist-info`
and its entry point in the `daas_spawner.backends` group, so profiles may say `backend: sandbox`,
with no edit to daas_spawner and nothing installed into the venv.
"""
