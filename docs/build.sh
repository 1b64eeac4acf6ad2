#!/usr/bin/env bash
# Build the documentation as CI does, from the test venv:
#
#   bash docs/build.sh [OUT]        # OUT: /tmp/daas-docs by default (outside the tree)
#
# 1. HTML with every warning an error (-W --keep-going: all of them are listed before it fails) and
#    nitpicky references (-n): a link to a page, heading (MyST anchors), setting ({confval}) or model
#    that does not exist fails the build. The configuration reference is generated from the code at
#    this step (docs/_ext/daas_reference.py); screenshots come from the browser tests if they ran
#    (docs/_ext/daas_screenshots.py), and a note stands in for each missing one.
# 2. Sphinx's linkcheck for external links. CI reaches only the package registries' APIs, so links
#    outside those (docs/conf.py, REACHABLE) are skipped and listed as "ignored" in
#    OUT/linkcheck/output.json: they are NOT checked here. DAAS_LINKCHECK_ALL=1 checks them all, on a
#    machine with internet. Links inside the docs were already checked by step 1.
set -euo pipefail

DOCS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=${1:-/tmp/daas-docs}
SPHINX_BUILD=${SPHINX_BUILD:-/opt/jupyterhub-daas/venv/bin/sphinx-build}

rm -rf "$OUT"
"$SPHINX_BUILD" -q -E -W --keep-going -n -b html -d "$OUT/doctrees" "$DOCS" "$OUT/html"
"$SPHINX_BUILD" -q -E -W --keep-going -n -b linkcheck -d "$OUT/doctrees" "$DOCS" "$OUT/linkcheck"
echo "docs: $OUT/html/index.html (external links: $OUT/linkcheck/output.json)"
