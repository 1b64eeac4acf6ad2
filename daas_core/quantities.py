"""Parse and format the quantities people write by hand: memory sizes, wall times and durations.

Both profiles (admin input) and user options (user input) go through these parsers, so a
value means the same thing wherever it is written. Parsers accept only a strict grammar;
anything else raises ValueError with a message fit to show a user.
"""

from __future__ import annotations

import re

_MEMORY = re.compile(r"^(\d{1,9})(?:\.(\d{1,3}))? *([KMGT]?)(?:i?B)?$", re.IGNORECASE | re.ASCII)
_MEMORY_FACTOR_MB = {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024 * 1024}
# Each grammar again for JSON Schema (ECMA-262: no flags, no named groups), for editors and `daas-profiles schema`.
# tests/unit/test_profile_schema.py checks that each takes what its parser takes.
MEMORY_PATTERN = r"^ *[0-9]{1,9}(\.[0-9]{1,3})? *[KMGTkmgt]?([iI]?[bB])? *$"

# Slurm's own --time grammar, restricted to the unambiguous forms:
# "M", "H:MM:SS", "D-HH", "D-HH:MM", "D-HH:MM:SS" (and "H:MM").
_WALLTIME = re.compile(
    r"^(?:(?P<days>\d{1,3})-(?P<dh>\d{1,2})(?::(?P<dm>\d{2})(?::(?P<ds>\d{2}))?)?"
    r"|(?P<h>\d{1,4}):(?P<m>\d{2})(?::(?P<s>\d{2}))?"
    r"|(?P<minutes>\d{1,6}))$",
    re.ASCII,
)
WALLTIME_PATTERN = (
    r"^ *([0-9]{1,3}-([01]?[0-9]|2[0-3])(:[0-5][0-9](:[0-5][0-9])?)?"
    r"|[0-9]{1,4}:[0-5][0-9](:[0-5][0-9])?"
    r"|[0-9]{1,6}) *$"
)

# A duration as admins write lifetimes and timeouts: "90s", "2m", "8h", "1d", "1h30m" (largest unit first).
_DURATION = re.compile(r"^(?:(?P<d>\d{1,4})d)?(?:(?P<h>\d{1,5})h)?(?:(?P<m>\d{1,6})m)?(?:(?P<s>\d{1,7})s)?$", re.ASCII)
_DURATION_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
DURATION_PATTERN = r"^ *(?=[0-9])([0-9]{1,4} *d *)?([0-9]{1,5} *h *)?([0-9]{1,6} *m *)?([0-9]{1,7} *s *)?$"


def parse_memory_mb(value: str | int) -> int:
    """Return a memory size in MiB; plain numbers are MiB, suffixes K/M/G/T (binary)."""
    if isinstance(value, bool):
        raise ValueError("memory must be a size such as '4G' or '512M'")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("memory must not be negative")
        return value
    match = _MEMORY.fullmatch(value.strip(" ")) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"memory {value!r} is not a size such as '4G' or '512M'")
    whole, fraction, unit = match.groups()
    amount = float(f"{whole}.{fraction or 0}")
    return int(amount * _MEMORY_FACTOR_MB[unit.upper()])


def format_memory(mb: int) -> str:
    """Render MiB the way people read it ('4G', '1536M')."""
    if mb and mb % (1024 * 1024) == 0:
        return f"{mb // (1024 * 1024)}T"
    if mb and mb % 1024 == 0:
        return f"{mb // 1024}G"
    return f"{mb}M"


def parse_walltime_seconds(value: str | int) -> int:
    """Return a wall time in seconds from Slurm's time grammar; a plain number is minutes."""
    if isinstance(value, bool):
        raise ValueError("walltime must be a duration such as '4:00:00'")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("walltime must not be negative")
        return value * 60
    match = _WALLTIME.fullmatch(value.strip(" ")) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"walltime {value!r} is not a duration such as '4:00:00', '90' (minutes) or '1-12:00:00'")
    parts = {k: int(v) for k, v in match.groupdict().items() if v is not None}
    if "minutes" in parts:
        return parts["minutes"] * 60
    if "days" in parts:
        hours, minutes, seconds = parts["dh"], parts.get("dm", 0), parts.get("ds", 0)
        days = parts["days"]
    else:
        days, hours, minutes, seconds = 0, parts["h"], parts["m"], parts.get("s", 0)
    if minutes > 59 or seconds > 59 or ("days" in parts and hours > 23):
        raise ValueError(f"walltime {value!r} has minutes or seconds above 59 or hours above 23")
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def format_walltime(seconds: int) -> str:
    """Render seconds as Slurm's D-HH:MM:SS (days only when needed)."""
    minutes, secs = divmod(seconds, 60)
    hours, mins = divmod(minutes, 60)
    days, hrs = divmod(hours, 24)
    if days:
        return f"{days}-{hrs:02d}:{mins:02d}:{secs:02d}"
    return f"{hrs}:{mins:02d}:{secs:02d}"


def parse_duration_seconds(value: str | int) -> int:
    """Return seconds from "90s", "2m", "8h", "1d" or "1h30m"; a plain number is seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is written like '30m', '8h' or '2d'")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a duration must not be negative")
        return value
    text = value.replace(" ", "") if isinstance(value, str) else ""
    match = _DURATION.fullmatch(text) if text else None
    if not match or not any(match.groupdict().values()):
        raise ValueError(f"duration {value!r} is not written like '30m', '8h', '1h30m' or '2d'")
    return sum(int(amount) * _DURATION_UNITS[unit] for unit, amount in match.groupdict().items() if amount)


def format_duration(seconds: int) -> str:
    """Render seconds the way people say them: '2 min', '8 h', '1 h 30 min', '2 d 4 h' (two units at most)."""
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount} {unit}")
    return " ".join(parts[:2]) or "0 s"
