"""Named replication targets in ``preserve.toml``, with where they are (for NDSA judgements).

::

    [origin]                     # where the bags themselves are kept
    site = "Library basement, Leeds"
    region = "uk-north"
    provider = "own"
    threats = ["flood"]

    [targets.offsite]
    url = "s3://archive-bucket/bags"
    endpoint-url = "https://s3.eu-central-1.wasabisys.com"
    s3-region = "eu-central-1"
    aws-profile = "archive"      # an AWS profile name, never a key: credentials stay in the AWS chain
    path-style = false
    storage-class = "DEEP_ARCHIVE"
    checksum-when = "required"
    site = "Wasabi Amsterdam"
    region = "eu-central"
    provider = "Wasabi"
    threats = ["north-sea-flood"]

Credentials are refused in this file: a key such as ``aws_secret_access_key`` is an error. So is
any key not shown here (``endpoint_url`` for ``endpoint-url``): :mod:`preserve.configfile` reads
the file and knows its every table and key. ``profile`` is read as the AWS profile too (its name
before ``aws-profile``: in preserve "profile" alone names a BagIt profile).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from preserve.configfile import CONFIG_NAME, find_config, read_config
from preserve.errors import InputError, UsageError
from preserve.stores.base import check_endpoint_url


@dataclass(frozen=True)
class Location:
    """Where a copy lives: a site (building, data centre), a region, a provider, its threats."""

    site: str | None = None
    region: str | None = None
    provider: str | None = None
    threats: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"site": self.site, "region": self.region, "provider": self.provider, "threats": list(self.threats)}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Location:
        d = d or {}
        return cls(site=d.get("site"), region=d.get("region"), provider=d.get("provider"),
                   threats=tuple(str(t) for t in d.get("threats") or ()))


@dataclass(frozen=True)
class TargetSpec:
    """A target as configured (or as typed on the command line, with no location)."""

    url: str
    name: str | None = None
    location: Location = field(default_factory=Location)
    endpoint_url: str | None = None
    s3_region: str | None = None
    profile: str | None = None
    path_style: bool | None = None
    storage_class: str | None = None
    checksum_when: str | None = None


@dataclass(frozen=True)
class ReplicationConfig:
    """The parsed configuration file (empty when there is none)."""

    path: Path | None = None
    origin: Location = field(default_factory=Location)
    targets: dict[str, TargetSpec] = field(default_factory=dict)

    def resolve(self, text: str) -> TargetSpec:
        """A target by name, or a URL/path (which picks up a configured target's location when
        it is that target or lies under it)."""
        if text in self.targets:
            return self.targets[text]
        if "://" not in text and not text.startswith(("/", ".", "~")) and not os.path.exists(text) and "/" not in text:
            known = ", ".join(sorted(self.targets)) or "none configured"
            where = self.path or CONFIG_NAME
            raise UsageError(f"{text}: no target of that name in {where} (known: {known}) and no such folder; "
                             f"give a folder (./{text} makes a new one), an s3:// URL, or a target's name")
        url = text if "://" in text and not text.startswith("file://") else os.path.abspath(os.path.expanduser(text.removeprefix("file://")))
        for spec in self.targets.values():
            base = spec.url.rstrip("/")
            if url == base or url.startswith(base + "/"):
                return replace(spec, url=url)
        return TargetSpec(url=url)

    def target_for_location(self, url: str) -> TargetSpec | None:
        """The configured target a recorded replica location lies under, if any."""
        for spec in self.targets.values():
            base = spec.url.rstrip("/")
            if url == base or url.startswith(base + "/"):
                return spec
        return None


def load_config(path: str | os.PathLike[str] | None = None) -> ReplicationConfig:
    """Read the configuration file (see the module docstring); an absent file is an empty config,
    unless it was named explicitly."""
    found = find_config(path)
    if found is None:
        return ReplicationConfig()
    if not found.is_file():
        raise InputError(f"{found}: no such configuration file")
    data = read_config(found)
    origin = _location(found, "origin", data.get("origin") or {})
    targets: dict[str, TargetSpec] = {}
    raw_targets = data.get("targets") or {}
    if not isinstance(raw_targets, dict):
        raise InputError(f"{found}: [targets] must be a table of named targets")
    for name, t in raw_targets.items():
        if not isinstance(t, dict) or not isinstance(t.get("url"), str):
            raise InputError(f"{found}: target {name!r} needs url = \"s3://bucket/prefix\" or a directory path")
        if t.get("endpoint-url") is not None:
            check_endpoint_url(str(t["endpoint-url"]), f"{found}: [targets.{name}] endpoint-url")
        url = t["url"] if "://" in t["url"] and not t["url"].startswith("file://") else os.path.abspath(os.path.expanduser(t["url"].removeprefix("file://")))
        targets[name] = TargetSpec(
            url=url.rstrip("/"), name=name, location=_location(found, f"targets.{name}", t),
            endpoint_url=t.get("endpoint-url"), s3_region=t.get("s3-region"),
            profile=t.get("aws-profile") or t.get("profile"),
            path_style=t.get("path-style"), storage_class=t.get("storage-class"),
            checksum_when=t.get("checksum-when"))
    return ReplicationConfig(path=found, origin=origin, targets=targets)


def _location(path: Path, where: str, t: dict[str, Any]) -> Location:
    threats = t.get("threats") or []
    if isinstance(threats, str):
        threats = [threats]
    if not isinstance(threats, list):
        raise InputError(f"{path}: [{where}] threats must be a list of strings")
    return Location(site=t.get("site"), region=t.get("region"), provider=t.get("provider"),
                    threats=tuple(str(x) for x in threats))
