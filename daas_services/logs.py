"""One JSON object per log line (`--log-format=json`), for a site's log collector.

Fields: time (ISO 8601, UTC), level, logger, message (its arguments applied), and exc_info (the
traceback) when the record has one. A message's line breaks stay inside its JSON string, so one
record is always one line.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON; the services' logging config names it when asked."""

    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            document["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            document["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(document, ensure_ascii=False)
