"""Sphinx settings of the jupyterhub-daas documentation (built by docs/build.sh)."""

import os
import re
import sys
from pathlib import Path

import tomllib  # Python 3.11+: the docs build runs in the test venv (Debian 12: 3.11)

DOCS = Path(__file__).resolve().parent
# The checkout's code first: the configuration reference describes the tree being built.
sys.path[:0] = [str(DOCS / "_ext"), str(DOCS.parent)]

PROJECT = tomllib.loads((DOCS.parent / "pyproject.toml").read_text())["project"]
project = PROJECT["name"]
release = version = PROJECT["version"]
author = "jupyterhub-daas developers"
copyright = "jupyterhub-daas developers (BSD-3-Clause)"

extensions = ["myst_parser", "daas_reference", "daas_screenshots"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "_screenshots"]
myst_enable_extensions = ["colon_fence", "deflist", "substitution"]
# What the install page says about versions and extras, read from pyproject.toml so it stays true.
myst_substitutions = {
    "requires_python": PROJECT["requires-python"],
    "jupyterhub": next(spec for spec in PROJECT["dependencies"] if spec.startswith("jupyterhub")),
    "version": version,
}
myst_heading_anchors = 3  # `[...](#a-heading)` links are checked like references
smartquotes = False  # help texts name options such as `--output`: no dashes or curly quotes made of them

# Every reference must resolve: with -n (build.sh) a broken one is a warning, with -W an error.
nitpicky = True

html_theme = "alabaster"
html_title = "jupyterhub-daas"
html_static_path: list[str] = []

# The linkcheck builder (build.sh) fetches external links. CI reaches only the package registries'
# APIs (not even pypi.org/project/ pages), so links outside these prefixes are skipped and reported as
# "ignored", never as working. DAAS_LINKCHECK_ALL=1 checks every external link (a machine with internet).
# Links inside these pages are not its job: the html build resolves them, nitpicky, as references.
REACHABLE = ("https://pypi.org/simple/", "https://files.pythonhosted.org/", "https://deb.debian.org/")
if os.environ.get("DAAS_LINKCHECK_ALL"):
    linkcheck_ignore: list[str] = []
else:
    linkcheck_ignore = [rf"^(?!{'|'.join(re.escape(prefix) for prefix in REACHABLE)})https?://"]
linkcheck_timeout = 15
linkcheck_retries = 2
