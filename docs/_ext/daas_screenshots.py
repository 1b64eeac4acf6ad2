"""Screenshots the browser tests took, shown in the user's guide when they exist.

The browser tests (tests/browser/) save PNGs under stable names in $DAAS_SCREENSHOTS (default
/tmp/daas-test-artifacts/screenshots). At the start of a build they are copied into `_screenshots/`
(git-ignored: test output is never committed; removed again when the build ends, so no sdist or
commit picks it up), and each ```{screenshot} name``` directive becomes a figure with its caption.
A build before the tests, or without them, shows a note naming the missing screenshot instead: the
same pages, no warning.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

DEFAULT_SOURCE = "/tmp/daas-test-artifacts/screenshots"  # noqa: S108 (where tests/integration writes artifacts)
FOLDER = "_screenshots"


def copy_screenshots(app: Any) -> None:
    """Replace `_screenshots/` with the PNGs the tests left (none: an empty folder)."""
    source = Path(os.environ.get("DAAS_SCREENSHOTS", DEFAULT_SOURCE))
    target = Path(app.srcdir) / FOLDER
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    for png in sorted(source.glob("*.png")) if source.is_dir() else []:
        shutil.copy2(png, target / png.name)


def remove_screenshots(app: Any, exception: Exception | None) -> None:
    """The build has copied what it shows into its output: the source tree keeps no test output."""
    shutil.rmtree(Path(app.srcdir) / FOLDER, ignore_errors=True)


class Screenshot(SphinxDirective):
    """```{screenshot} 01-spawn-form``` with the caption as content."""

    required_arguments = 1
    has_content = True

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0]
        caption = " ".join(self.content).strip()
        if (Path(self.env.srcdir) / FOLDER / f"{name}.png").is_file():
            figure = nodes.figure()
            figure += nodes.image(uri=f"/{FOLDER}/{name}.png", alt=caption or name)
            if caption:
                figure += nodes.caption(caption, caption)
            return [figure]
        note = nodes.note()
        note += nodes.paragraph(
            text=f"Screenshot {name} ({caption or 'no caption'}) is not in this build: the browser tests "
            "save it (bash tests/run.sh tests/browser), and docs/build.sh run after them includes it."
        )
        return [note]


def setup(app: Any) -> dict[str, Any]:
    app.connect("builder-inited", copy_screenshots)
    app.connect("build-finished", remove_screenshots)
    app.add_directive("screenshot", Screenshot)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
