"""What `daas-data` and `daas-dask` share: a traitlets Application that reads a Python config file.

Component settings are traits, set in a config file like jupyterhub_config.py (`c.DataService.*`,
`c.DaskService.*`, `c.UserAccounts.*`) or on the command line; the site's data (locations, limits)
stays in YAML files the settings name. JupyterHub starts each service as a managed service and
passes its URL, prefix and token in the environment (JUPYTERHUB_SERVICE_URL, ...).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any, ClassVar, NoReturn
from urllib.parse import SplitResult, urlsplit

from pydantic import BaseModel
from traitlets import Enum, Instance, TraitError, TraitType, Unicode, default, validate
from traitlets.config import Application, catch_config_error

from daas_core.accounts import UserAccounts
from daas_core.loading import SiteFileError, site_file_schema
from daas_core.quantities import format_memory, parse_memory_mb

from .logs import JsonFormatter

DEFAULT_CONFIG_FILE = "daas_config.py"
JSON_LOGS = "json"  # the log_format that makes each line a JSON object


class ByteSize(TraitType[int, Any]):
    """A size in bytes, written as a number of bytes or as a size such as '512M' or '2G' (binary units).

    1 MiB at least: the services' sizes (memory limits, preview bounds) are never smaller.
    """

    info_text = "a size such as '512M' or '2G', or a number of bytes (1M at least)"

    def validate(self, obj: Any, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            self.error(obj, value)
        if isinstance(value, str):
            try:
                value = parse_memory_mb(value) << 20
            except ValueError as err:
                raise TraitError(f"{self.name}: {err}") from None
        if value < 1 << 20:
            raise TraitError(f"{self.name}: {value} bytes is less than 1M")
        return value

    def from_string(self, s: str) -> int | str:
        return int(s) if s.isdigit() else s

    def default_value_repr(self) -> str:
        return repr(format_memory(self.default_value >> 20))


class SiteFileSchema(Application):
    """`daas-data schema`, `daas-dask schema`: what a site file may say, without a config file or a site file."""

    name = "schema"
    aliases: ClassVar[dict] = {}  # nothing to set: a bare command
    flags: ClassVar[dict] = {}
    description = """Print the JSON Schema (draft 2020-12) of the service's YAML site file as written, e.g. for
    yaml-language-server (`# yaml-language-server: $schema=...` at the top of the file)."""

    def start(self) -> None:
        print(json.dumps(site_file_schema(self.parent.site_file_model), indent=2))


class DaaSService(Application):
    """The common part of the DaaS services: config file, account rules, logging, the hub's environment."""

    default_url = ""  # where the service listens when the hub has not said (JUPYTERHUB_SERVICE_URL)
    site_file_model: ClassVar[type[BaseModel]]  # the model of the YAML site file the service reads
    subcommands = {"schema": (SiteFileSchema, "Print the JSON Schema of the service's YAML site file, and exit.")}

    aliases = {
        **Application.aliases,
        "log-level": "DaaSService.log_level",
        "log-format": "DaaSService.log_format",
        "f": "DaaSService.config_file",
        "config": "DaaSService.config_file",
    }
    raise_config_file_errors = True
    classes = [UserAccounts]  # in --help-all, and what `c.UserAccounts` configures

    config_file = Unicode(
        DEFAULT_CONFIG_FILE,
        config=True,
        help="""The Python config file to load (like jupyterhub_config.py: `c.DataService.reader_memory = "2G"`).

        Default: daas_config.py in the working directory, skipped when missing; a file named here must
        exist. One file can serve both services and, through `load_subconfig`, the hub: each reads its
        own sections, and `c.UserAccounts` is shared.""",
    )
    user_accounts = Instance(UserAccounts, help="The site's account rules (`c.UserAccounts`).")
    log_level = Enum(
        (0, 10, 20, 30, 40, 50, "DEBUG", "INFO", "WARN", "ERROR", "CRITICAL"),
        logging.INFO,
        config=True,
        help="The log level, by name or value (`--log-level=DEBUG`). INFO logs each start, stop and refusal.",
    )
    log_format = Unicode(
        "[%(levelname)1.1s %(asctime)s %(name)s] %(message)s",
        config=True,
        help="""How each log line looks: a logging format template, or "json" (`--log-format=json`) for one
        JSON object per line with time (ISO 8601, UTC), level, logger, message, and exc_info when there is
        a traceback, for a site's log collector.""",
    )

    @default("log")
    def _log_default(self) -> logging.Logger:
        return logging.getLogger(self.name)  # the service modules' logger too

    @classmethod
    def class_get_help(cls, inst: Any = None) -> str:
        """Each class's own settings only: --help-all lists Application's (logging_config, ...) once."""
        title = f"{cls.__name__}({', '.join(base.__name__ for base in cls.__bases__)}) options"
        own = [cls.class_get_trait_help(trait, inst) for _, trait in sorted(cls.class_own_traits(config=True).items())]
        return "\n".join([title, "-" * len(title), *own])

    @property
    def listen(self) -> SplitResult:
        """Where the service listens: the hub's JUPYTERHUB_SERVICE_URL (or `default_url`)."""
        return urlsplit(os.environ.get("JUPYTERHUB_SERVICE_URL", self.default_url))

    @validate("config_file")
    def _config_file_is_python(self, proposal: Any) -> str:
        if not proposal.value.endswith(".py"):
            raise TraitError(
                f"config_file {proposal.value!r} is not a Python config file (*.py, like jupyterhub_config.py); "
                "YAML site files are named inside it, e.g. c.DataService.data_locations"
            )
        return proposal.value

    def get_default_logging_config(self) -> dict[str, Any]:
        """Log every logger (the service's modules, daas_core) to stderr, not only the app's own."""
        config = super().get_default_logging_config()
        if "handlers" in config:
            config.pop("loggers", None)
            config["root"] = {"level": logging.getLevelName(self.log_level), "handlers": ["console"]}
        if self.log_format == JSON_LOGS:
            config["formatters"]["console"] = {"()": JsonFormatter}
        return config

    @catch_config_error
    def initialize(self, argv: list[str] | None = None) -> None:
        """Command line, then the config file (the command line wins), then the settings' own checks."""
        super().initialize(argv)
        if self.subapp is not None:
            return  # `schema`: it needs no settings
        path = os.path.abspath(self.config_file)
        if os.path.isfile(path):
            self.load_config_file(path)
        elif self.config_file != DEFAULT_CONFIG_FILE:
            self.fail(f"config file {path} does not exist")
        else:
            self.log.debug("No %s here: defaults and the command line only", DEFAULT_CONFIG_FILE)
        self.user_accounts = UserAccounts(parent=self)
        try:
            self.load_site_files()
        except SiteFileError as err:
            self.fail(str(err))

    def load_site_files(self) -> None:
        """Read the YAML files the settings name; a SiteFileError stops the service (see initialize)."""

    def require(self, trait: str) -> str:
        """The value of a setting the service cannot run without, or stop saying which one is missing."""
        value = getattr(self, trait)
        if not value:
            cls = type(self).__name__
            self.fail(f"c.{cls}.{trait} is not set: {self.class_traits()[trait].help.splitlines()[0]}")
        return value

    def fail(self, message: str) -> NoReturn:
        """Stop the service before it starts, with a message that names what is wrong."""
        self.log.critical("%s: %s", self.name, message)
        self.exit(1)

    def start(self) -> None:
        if self.subapp is not None:
            return self.subapp.start()
        try:
            asyncio.run(self.serve())
        except KeyboardInterrupt:
            pass

    async def serve(self) -> None:
        """Listen on `self.listen` and run until stopped."""
        raise NotImplementedError
