"""The `daas-data` command: browse and read people's proposal data, as them (a hub-managed service).

daas-data -f /etc/jupyterhub/daas_config.py     # c.DataService.*, c.UserAccounts.*
daas-data --help-all                            # every setting, with its default
"""

from __future__ import annotations

import asyncio
from typing import Any

from traitlets import Float, Integer, TraitError, Unicode, validate

from daas_core.mounts import DataLocations, load_data_locations

from ..app import ByteSize, DaaSService
from .as_user import PreviewBounds, UserReader


class DataService(DaaSService):
    """Browse and read people's proposal data, as them: each read is a short reader process as the person."""

    name = "daas-data"
    description = __doc__.splitlines()[0]
    examples = (
        "daas-data -f /etc/jupyterhub/daas_config.py\n"
        "daas-data --locations=/etc/jupyterhub/data.yaml\n"
        "daas-data schema > data.schema.json   # the JSON Schema of the data-locations file"
    )
    default_url = "http://127.0.0.1:10101"
    site_file_model = DataLocations
    aliases = {**DaaSService.aliases, "locations": "DataService.data_locations"}

    data_locations = Unicode(
        "",
        config=True,
        help="""The data-locations YAML file (required): where each proposal's data lives.

        The same file the spawner reads (`c.DaaSSpawner.data_locations`); profiles/data.yaml is an example.""",
    )
    reader_timeout = Float(
        60.0,
        config=True,
        help="""Seconds one answer (a listing, an HDF5 tree or preview, a download's start) may take;
        then the reader's whole process group is killed and the request gets 504.""",
    )
    reader_memory = ByteSize(
        1 << 30,
        config=True,
        help="""Address space one reader may use (RLIMIT_AS, set by the reader on itself, as the person).
        A read that needs more gets 422.""",
    )
    reader_cpu_time = Integer(
        30,
        min=1,
        config=True,
        help="""CPU seconds one reader may use for an answer (RLIMIT_CPU; the kernel ends it, 504).
        Downloads are not limited: their cost grows with the bytes the person asked for.""",
    )
    readers_per_person = Integer(
        4,
        min=1,
        config=True,
        help="""Readers one person may have running at once; a further request waits `reader_queue_wait`
        seconds for one to end, then gets 429 with Retry-After.""",
    )
    reader_queue_wait = Float(
        5.0,
        min=0.0,
        config=True,
        help="Seconds a request waits for one of its person's readers to end (see `readers_per_person`).",
    )
    preview_max_bytes = ByteSize(
        PreviewBounds.max_bytes,
        config=True,
        help="""Bytes of values one HDF5 preview may hold (elements x item size): fewer elements when
        each is large, 422 when one element is larger. Also what one h5grove read (data, stats,
        attributes) may return: a larger selection gets 422, before anything is read. H5Web reads
        an image or a slice of a stack whole: e.g. "16M" for 2048 x 2048 float32 images.""",
    )
    preview_max_read_bytes = ByteSize(
        PreviewBounds.max_read_bytes,
        config=True,
        help="""Bytes HDF5 may read and decompress for one preview or h5grove read: a compressed chunk
        is decompressed whole, so a read touching more, or a larger chunk, gets 422.""",
    )

    @validate("reader_timeout")
    def _positive(self, proposal: Any) -> float:
        if proposal.value <= 0:
            raise TraitError(f"{proposal.trait.name} must be more than 0 seconds, not {proposal.value}")
        return proposal.value

    def load_site_files(self) -> None:
        self.locations: DataLocations = load_data_locations(self.require("data_locations"))

    async def serve(self) -> None:
        from .service import make_app  # the web stack: not for --help or a bad setting

        reader = UserReader(
            prefix=self.user_accounts.user_prefix,
            timeout=self.reader_timeout,
            memory=self.reader_memory,
            cpu_seconds=self.reader_cpu_time,
            per_person=self.readers_per_person,
            queue_wait=self.reader_queue_wait,
            accounts=self.user_accounts.policy,
        )
        preview = PreviewBounds(max_bytes=self.preview_max_bytes, max_read_bytes=self.preview_max_read_bytes)
        make_app(self.locations, reader, preview=preview).listen(
            self.listen.port or 80, self.listen.hostname or "127.0.0.1"
        )
        self.log.info("daas-data listening on %s", self.listen.geturl())
        await asyncio.Event().wait()


main = DataService.launch_instance
