"""Serialize an HTML form the way a browser with JavaScript off submits it."""

from __future__ import annotations

import html
from html.parser import HTMLParser


class _FormFields(HTMLParser):
    def __init__(self, form_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.inside = False
        self.action = ""
        self.fields: list[tuple[str, str]] = []
        self._select: str | None = None
        self._select_value: str | None = None
        self._first_option: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {key: value or "" for key, value in attrs}
        if tag == "form" and a.get("id") == self.form_id:
            self.inside, self.action = True, html.unescape(a.get("action", ""))
        if not self.inside or "disabled" in a:
            return
        if tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind in ("radio", "checkbox"):
                if "checked" in a:
                    self.fields.append((a["name"], a.get("value", "on")))
            elif kind not in ("submit", "button", "file"):
                self.fields.append((a["name"], a.get("value", "")))
        elif tag == "select":
            self._select, self._select_value, self._first_option = a.get("name"), None, None
        elif tag == "option" and self._select:
            if self._first_option is None:
                self._first_option = a.get("value", "")
            if "selected" in a:
                self._select_value = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "select" and self._select:
            value = self._select_value if self._select_value is not None else self._first_option
            if value is not None:
                self.fields.append((self._select, value))
            self._select = None
        elif tag == "form":
            self.inside = False


def browser_submission(page: str, form_id: str = "spawn_form") -> tuple[str, list[tuple[str, str]]]:
    """The form's action and the (name, value) pairs a browser would post with no changes made."""
    parser = _FormFields(form_id)
    parser.feed(page)
    return parser.action, parser.fields


def choose(fields: list[tuple[str, str]], **changes: str) -> list[tuple[str, str]]:
    """Set fields as a person would (radio: pick a value; select/text: replace); dots as '__'."""
    changes = {name.replace("__", "."): value for name, value in changes.items()}
    kept = [(name, value) for name, value in fields if name not in changes]
    return kept + list(changes.items())
