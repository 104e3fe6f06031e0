"""``preserve.toml``: where it is found, what it may hold, and the one function that reads it.

Every table and key the file may hold::

    ledger = "..."        the audit ledger: a SQLite file or postgresql://... (docs/ledger.md)
    [origin]              where the bags themselves are kept: site, region, provider, threats
    [targets.NAME]        a named replication target: url, endpoint-url, s3-region, aws-profile
                          (or profile), path-style, storage-class, checksum-when, and where it is
                          (site, region, provider, threats) (docs/replication.md)
    [smtp]                the mail server of ``audit --notify mailto:...``: host, port, security,
                          username, from, ca-file, attach-html, timeout (docs/ledger.md)

A key preserve does not know is refused (:class:`~preserve.errors.UsageError`, exit 2), never
ignored: an ignored ``endpoint_url`` sends a target to AWS instead of the store the file meant. The
message names the file, the table and the key, and the closest known key. collection.toml refuses
its unknown keys too (as problems :mod:`preserve.intake.collection` reports).

Credentials are refused as well (:class:`~preserve.errors.InputError`, exit 3), without echoing
the value: they come only from the standard AWS chain and ``$PRESERVE_SMTP_PASSWORD``.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from preserve.errors import InputError, UsageError, plain_reason

CONFIG_NAME = "preserve.toml"
_SECRET_WORDS = ("secret", "access_key", "access-key", "session_token", "session-token", "password")

LOCATION_KEYS = ("site", "region", "provider", "threats")
TARGET_KEYS = ("url", "endpoint-url", "s3-region", "aws-profile", "profile", "path-style", "storage-class",
               "checksum-when", *LOCATION_KEYS)
SMTP_KEYS = ("host", "port", "security", "username", "from", "ca-file", "attach-html", "timeout")

#: Top-level keys holding a value.
VALUES = ("ledger",)
#: Top-level tables and their keys.
TABLES: dict[str, tuple[str, ...]] = {"origin": LOCATION_KEYS, "smtp": SMTP_KEYS}
#: Top-level tables of named tables ([targets.NAME]) and the keys of each.
NAMED: dict[str, tuple[str, ...]] = {"targets": TARGET_KEYS}


def find_config(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """``--config PATH``, else ``$PRESERVE_CONFIG``, else ``./preserve.toml``, else the user's
    configuration folder; None when there is none."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("PRESERVE_CONFIG")
    if env:
        return Path(env)
    here = Path.cwd() / CONFIG_NAME
    if here.is_file():
        return here
    try:
        from platformdirs import user_config_dir
    except ImportError:  # pragma: no cover - platformdirs is a dependency
        return None
    user = Path(user_config_dir("preserve")) / CONFIG_NAME
    return user if user.is_file() else None


def read_config(path: Path) -> dict[str, Any]:
    """The file at ``path``, parsed and checked: no credential, no key preserve does not know.

    Raises :class:`InputError` when it cannot be read, is not TOML or holds a credential, and
    :class:`UsageError` for an unknown table or key. The values are checked by their readers.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot be read ({plain_reason(exc)})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML ({exc})") from exc
    _refuse_secrets(path, data)
    check_keys(path, data)
    return data


def check_keys(path: Path, data: dict[str, Any]) -> None:
    """Refuse every table and key of ``data`` that preserve.toml cannot hold: all of them in one
    message, one a line when there are several, each with the closest known key."""
    unknown: list[str] = []
    for key, value in data.items():
        if key in VALUES:
            continue
        if key in TABLES:
            if isinstance(value, dict):
                unknown += _unknown_in(value, TABLES[key], f"[{key}]")
            continue
        if key in NAMED:
            if isinstance(value, dict):
                for name, table in value.items():
                    if isinstance(table, dict):
                        unknown += _unknown_in(table, NAMED[key], f"[{key}.{name}]")
            continue
        if isinstance(value, dict):
            close = closest(key, [*TABLES, *NAMED])
            unknown.append(f"unknown table [{key}]" + (f"; did you mean [{close}]?" if close else
                                                       f" (known: {', '.join(label for label, _ in _PLACES[1:])})"))
        else:
            unknown.append(f"unknown key {key!r} at the top level" + _hint(key, ""))
    if len(unknown) == 1:
        raise UsageError(f"{path}: {unknown[0]}")
    if unknown:
        raise UsageError(f"{path}: {len(unknown)} tables or keys preserve does not know:\n"
                         + "\n".join(f"  {u}" for u in unknown))


def closest(key: str, known: Iterable[str]) -> str | None:
    """The known key ``key`` was most likely meant to be (``endpoint_url``: ``endpoint-url``), or None.
    Also for collection.toml, whose keys are written with '_'."""
    choices = list(known)
    for spelling in (key.strip().lower(), _norm(key), _norm(key).replace("-", "_")):
        if spelling in choices:
            return spelling
    found = difflib.get_close_matches(key.strip().lower(), choices, n=1, cutoff=0.6)
    return found[0] if found else None


def _norm(key: str) -> str:
    return key.strip().lower().replace("_", "-").replace(" ", "-")


#: Where each key may stand ("" the top level), for telling where a misplaced key belongs.
_PLACES: list[tuple[str, tuple[str, ...]]] = [
    ("", VALUES), *((f"[{t}]", keys) for t, keys in TABLES.items()),
    *((f"[{t}.NAME]", keys) for t, keys in NAMED.items())]


def _unknown_in(table: dict[str, Any], known: tuple[str, ...], where: str) -> list[str]:
    return [f"unknown key {key!r} {_at(where)}" + _hint(key, where) for key in table if key not in known]


def _at(where: str) -> str:
    return f"in {where}" if where else "at the top level (above the first [table])"


def _hint(key: str, where: str) -> str:
    """'; did you mean ...?' with the closest key of the same table, else of another table (a key
    misplaced: below a [table] header instead of above it, say), else the table's known keys."""
    own = next((keys for label, keys in _PLACES if label == where or label == _named(where)), ())
    close = closest(key, own)
    if close:
        return f"; did you mean {close!r}?"
    for label, keys in _PLACES:
        other = closest(key, keys)
        if other is not None and keys is not own:
            return f"; did you mean {other!r} {_at(label)}?" if other != _norm(key) else f": it belongs {_at(label)}"
    return f" (known: {', '.join(own)})" if own else ""


def _named(where: str) -> str:
    """'[targets.offsite]' as its place: '[targets.NAME]'."""
    return where.split(".", 1)[0] + ".NAME]" if "." in where else where


def _refuse_secrets(path: Path, data: Any, where: str = "") -> None:
    if isinstance(data, dict):
        for key, value in data.items():
            if any(w in str(key).lower() for w in _SECRET_WORDS):
                # the value is never echoed: only where it is
                raise InputError(f"{path}: {where}{key} looks like a credential; credentials come only from the "
                                 "standard AWS chain (environment, profile, instance role), never from preserve.toml")
            _refuse_secrets(path, value, f"{where}{key}.")
