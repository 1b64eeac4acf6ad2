"""tests/package runs on what check_install.sh installed, never in the suite's own collection."""

import os

# The smoke tests need the fresh venv and the built artifacts that tests/package/check_install.sh passes.
collect_ignore = [] if os.environ.get("DAAS_PKG_VENV") else ["test_installed_wheel.py"]
