"""`daas-data`: a JupyterHub service to find and browse a person's experiment data.

API (under the service prefix, e.g. /services/daas-data/), for tokens or browser sessions
with the service's `access:services!service=daas-data` scope:

    GET api/mounts                                   the caller's proposals and their locations
    GET api/browse/<proposal>/<location>/<path>      a directory page (?offset=, ?limit=)
    GET api/files/<proposal>/<location>/<path>       download, with HTTP Range
    GET api/hdf5/<proposal>/<location>/<path>        HDF5 / NeXus tree; ?dataset=/entry/data previews one
    GET h5grove/{meta,attr,data,stats,paths}/?file=<proposal>/<location>/<path>&path=/entry/...
                                                     h5grove's API, for H5Web (h5grove_api.py)

and a small HTML view at the prefix itself; `GET metrics` gives Prometheus metrics to a hub token with
`read:metrics`. Every request is checked twice: against the
caller's own proposals and locations here (paths.py), and by the filesystem, since every
read runs as the caller's Unix user (as_user.py).
"""

from __future__ import annotations

import base64
import logging
import mimetypes
import os
import re
from dataclasses import asdict
from typing import Any, NoReturn
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape
from jupyterhub.services.auth import HubOAuthCallbackHandler
from tornado import web

from daas_core.mounts import DataLocations, Mount, resolve_mounts

from .. import metrics
from ..handlers import MetricsHandler, NoLoginRedirect, UserHandler
from ..hub_users import HubUsers
from .as_user import PreviewBounds, ReaderError, UserReader
from .h5grove_api import H5groveQueryError, parse_query
from .paths import DataPath, PathRefused, parse_request_path

log = logging.getLogger("daas-data")

MAX_PAGE = 1000
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".nxs", ".nx5", ".cxi")


def is_hdf5(name: str) -> bool:
    return name.lower().endswith(HDF5_SUFFIXES)


BEYOND_ANY_FILE = 2**63 - 1


def _position(digits: str) -> int:
    """A byte position; a longer number than any file could need is past every file's end."""
    return int(digits) if len(digits) <= 18 else BEYOND_ANY_FILE


def parse_range(header: str | None) -> dict[str, int] | None:
    """One `bytes=` range as the reader takes it; anything else (several, malformed) means the whole file."""
    match = _RANGE.fullmatch((header or "").strip())
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if not first:
        return {"suffix": _position(last)}
    if last and _position(last) < _position(first):
        return None
    return {"start": _position(first), **({"end": _position(last)} if last else {})}


class DataHandler(UserHandler):
    """Identifies the caller through the hub and resolves their mounts."""

    def initialize(self, locations: DataLocations, users: HubUsers, reader: UserReader, preview: PreviewBounds) -> None:
        self.locations = locations
        self.users = users
        self.reader = reader
        self.preview = preview

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if status_code == 429:  # too many reads of this person at once
            self.set_header("Retry-After", "1")
        super().write_error(status_code, **kwargs)

    async def mounts(self) -> list[Mount]:
        return resolve_mounts(self.locations, await self.users.proposals(self.username))

    async def mount_for(self, request_path: str) -> tuple[Mount, DataPath]:
        """The caller's mount that a request names, or a refusal that reveals nothing else."""
        try:
            path = parse_request_path(request_path)
        except PathRefused as err:
            self.refuse(err.status, str(err), request_path, "path_refused")
        mounts = await self.mounts()
        if not any(mount.proposal == path.proposal for mount in mounts):
            self.refuse(403, f"{path.proposal} is not one of your proposals", request_path, "not_your_proposal")
        for mount in mounts:
            if (mount.proposal, mount.name) == (path.proposal, path.location):
                return mount, path
        self.refuse(
            404, f"proposal {path.proposal} has no location {path.location!r}", request_path, "no_such_location"
        )

    def refuse(self, status: int, message: str, request_path: str, rule: str) -> NoReturn:
        metrics.refused(rule)
        log.warning("refused %s %r for %s: %s", self.request.method, request_path, self.current_user["name"], message)
        raise web.HTTPError(status, message)

    async def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        try:
            answer = await self.reader.ask(self.username, request)
        except ReaderError as err:
            metrics.reader_refused(err.status)
            if err.status in (403, 400):
                log.warning("reader refused %s for %s: %s", request.get("names"), self.username, err)
            raise web.HTTPError(err.status, str(err)) from None
        metrics.data_read(request["op"])
        return answer

    async def listing(self, mount: Mount, path: DataPath) -> dict[str, Any]:
        """One page of a directory (?offset=, ?limit=)."""
        offset, limit = page_bounds(self)
        request = {"op": "list", "root": mount.source, "names": path.names, "offset": offset, "limit": limit}
        return await self.ask(request)


class ApiHandler(NoLoginRedirect, DataHandler):
    """Token calls: an anonymous one is a 403, not a login redirect."""


class MountsHandler(ApiHandler):
    @web.authenticated
    async def get(self) -> None:
        self.write_json(mounts_document(await self.users.proposals(self.username), self.locations))
        metrics.data_read("mounts")


def mounts_document(proposals: list[Any], locations: DataLocations) -> dict[str, Any]:
    by_id = {proposal.id: proposal for proposal in proposals}
    listed: dict[str, dict[str, Any]] = {}
    for mount in resolve_mounts(locations, proposals):
        entry = listed.setdefault(
            mount.proposal,
            {"id": mount.proposal, "title": by_id[mount.proposal].title, "locations": []},
        )
        entry["locations"].append({"name": mount.name, "path": mount.source, "writable": mount.writable})
    return {"proposals": list(listed.values())}


def page_bounds(handler: web.RequestHandler) -> tuple[int, int]:
    try:
        offset = int(handler.get_query_argument("offset", "0"))
        limit = int(handler.get_query_argument("limit", "100"))
    except ValueError:
        raise web.HTTPError(400, "offset and limit are whole numbers") from None
    if offset < 0 or not 1 <= limit <= MAX_PAGE:
        raise web.HTTPError(400, f"offset >= 0 and 1 <= limit <= {MAX_PAGE}")
    return offset, limit


class BrowseHandler(ApiHandler):
    @web.authenticated
    async def get(self, request_path: str) -> None:
        mount, path = await self.mount_for(request_path)
        listing = await self.listing(mount, path)
        self.write_json({"proposal": mount.proposal, "location": mount.name, "path": path.relative, **listing})


class Hdf5Handler(ApiHandler):
    @web.authenticated
    async def get(self, request_path: str) -> None:
        mount, path = await self.mount_for(request_path)
        dataset = self.get_query_argument("dataset", None)
        request = {"op": "hdf5", "root": mount.source, "names": path.names, "dataset": dataset}
        self.write_json(await self.ask({**request, **asdict(self.preview)}))


class H5groveHandler(ApiHandler):
    """h5grove's API (h5grove_api.py) for H5Web and jupyterlab-h5web-style clients, read as the caller."""

    @web.authenticated
    async def get(self, endpoint: str) -> None:
        try:
            query = parse_query(endpoint, self.request.query_arguments)
        except H5groveQueryError as err:
            raise web.HTTPError(400, str(err)) from None
        mount, path = await self.mount_for(query.file)
        request = {"op": "h5grove", "root": mount.source, "names": path.names, **query.reader_request()}
        answer = await self.ask({**request, **asdict(self.preview)})
        for name, value in answer["headers"].items():
            self.set_header(name, value)
        self.set_header("Content-Security-Policy", "sandbox")  # a download, never a page on the hub's origin
        body = base64.b64decode(answer["body"])
        self.finish(body)
        metrics.data_served(len(body))


class FileHandler(ApiHandler):
    @web.authenticated
    async def get(self, request_path: str) -> None:
        mount, path = await self.mount_for(request_path)
        wanted = parse_range(self.request.headers.get("Range"))
        request = {"op": "read", "root": mount.source, "names": path.names, **(wanted or {})}
        try:
            header, body = await self.reader.stream(self.username, request)
        except ReaderError as err:
            metrics.reader_refused(err.status)
            if err.status != 416:
                raise web.HTTPError(err.status, str(err)) from None
            # Answered here: an HTTPError would clear the Content-Range header that 416 needs.
            self.set_header("Content-Range", f"bytes */{err.detail.get('size', 0)}")
            return self.write_json({"status": 416, "message": str(err)}, status=416)
        name = path.names[-1] if path.names else mount.name
        first, last, size = header["first"], header["last"], header["size"]
        self.set_status(206 if wanted else 200)
        if wanted:
            self.set_header("Content-Range", f"bytes {first}-{last}/{size}")
        self.set_header("Accept-Ranges", "bytes")
        self.set_header("Content-Length", str(max(last - first + 1, 0)))
        self.set_header("Content-Type", mimetypes.guess_type(name)[0] or "application/octet-stream")
        # Data files are served from the hub's origin: never rendered as a page there.
        self.set_header("Content-Disposition", f"attachment; filename*=UTF-8''{quote(name)}")
        self.set_header("Content-Security-Policy", "sandbox")
        try:
            async for chunk in body:
                self.write(chunk)
                await self.flush()
                metrics.data_served(len(chunk))
        finally:
            await body.aclose()  # a client that went away ends the reader and frees its slot now
        self.finish()
        metrics.data_read("read")


TEMPLATES = Environment(
    loader=PackageLoader("daas_services.data", "templates"), autoescape=select_autoescape(default=True)
)


class PageHandler(DataHandler):
    """The view for people: mounts, then folders, then an HDF5 file's tree."""

    @web.authenticated
    async def get(self, request_path: str = "") -> None:
        prefix = self.settings["service_prefix"]
        if not request_path:
            document = mounts_document(await self.users.proposals(self.username), self.locations)
            return self.render_page(prefix=prefix, mounts=document["proposals"])
        mount, path = await self.mount_for(request_path)
        base = f"{mount.proposal}/{mount.name}" + "".join(f"/{quote(name)}" for name in path.names)
        if path.names and is_hdf5(path.names[-1]):
            tree = await self.ask({"op": "hdf5", "root": mount.source, "names": path.names, "dataset": None})
            return self.render_page(prefix=prefix, mount=mount, path=path, base=base, tree=tree)
        self.render_page(prefix=prefix, mount=mount, path=path, base=base, listing=await self.listing(mount, path))

    def render_page(self, **values: Any) -> None:
        self.set_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
        self.finish(TEMPLATES.get_template("data.html").render(user=self.username, is_hdf5=is_hdf5, **values))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        message = self.error_message(**kwargs)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(TEMPLATES.get_template("data.html").render(error=message, status=status_code, prefix=""))


def make_app(
    locations: DataLocations,
    reader: UserReader,
    users: HubUsers | None = None,
    preview: PreviewBounds | None = None,
) -> web.Application:
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/daas-data/")
    deps = {
        "locations": locations,
        "users": users or HubUsers(),
        "reader": reader,
        "preview": preview or PreviewBounds(),
    }
    return web.Application(
        [
            (rf"{prefix}api/mounts", MountsHandler, deps),
            (rf"{prefix}api/browse/(.*)", BrowseHandler, deps),
            (rf"{prefix}api/files/(.*)", FileHandler, deps),
            (rf"{prefix}api/hdf5/(.*)", Hdf5Handler, deps),
            (rf"{prefix}h5grove/([^/]*)/?", H5groveHandler, deps),
            (rf"{prefix}oauth_callback", HubOAuthCallbackHandler),
            (rf"{prefix}metrics", MetricsHandler),
            (rf"{prefix}view/(.*)", PageHandler, deps),
            (rf"{prefix}?", PageHandler, deps),
        ],
        cookie_secret=os.urandom(32),  # only HubOAuth's session cookie: a restart means a new login
        service_prefix=prefix,
    )
