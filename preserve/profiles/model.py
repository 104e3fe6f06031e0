"""BagIt Profiles (specification 1.1.0 to 1.4.0): reading a profile and checking the profile itself.

A profile is JSON. This module turns it into a :class:`Profile`, refusing what cannot be applied
(wrong types, contradictions the specification forbids) with :class:`~preserve.errors.BadProfile`
naming the field, and keeping what is merely unusual (keys the specification does not define,
such as ``recommended`` that some real profiles carry) as warnings.

Profiles are found without the network: a path to a JSON file, the short name of a profile shipped
with preserve (``preserve-audio-aip``) or kept in the user's profile folder, or the
``BagIt-Profile-Identifier`` URI of one of those. The profiles a bag declares are found by
:func:`declared_profiles`, by identifier only (a value from a bag is never taken for a path).
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from preserve.errors import BadProfile

#: The versions of the profiles specification this module applies.
SPEC_VERSIONS = ("1.1.0", "1.2.0", "1.3.0", "1.4.0")
#: A profile without ``BagIt-Profile-Version`` is read as 1.1.0, as the specification says.
DEFAULT_SPEC_VERSION = "1.1.0"

#: Top-level fields, in the order the specification lists them.
FIELDS = (
    "BagIt-Profile-Info", "Bag-Info", "Manifests-Required", "Manifests-Allowed", "Allow-Fetch.txt",
    "Fetch.txt-Required", "Data-Empty", "Serialization", "Accept-Serialization",
    "Accept-BagIt-Version", "Tag-Manifests-Required", "Tag-Manifests-Allowed", "Tag-Files-Required",
    "Tag-Files-Allowed", "Payload-Files-Required", "Payload-Files-Allowed",
)
INFO_REQUIRED = ("Source-Organization", "External-Description", "Version", "BagIt-Profile-Identifier")
INFO_OPTIONAL = ("BagIt-Profile-Version", "Contact-Name", "Contact-Phone", "Contact-Email")
TAG_OPTIONS = ("required", "values", "repeatable", "description")
SERIALIZATION_VALUES = ("forbidden", "required", "optional")

#: The identifiers of the profiles preserve ships. Versioned: a changed rule gets a new URI.
AUDIO_AIP_PROFILE_ID = "https://preserve-archive.github.io/preserve/profiles/preserve-audio-aip-v1.json"
TRANSFER_PROFILE_ID = "https://preserve-archive.github.io/preserve/profiles/preserve-transfer-v1.json"


@dataclass(frozen=True)
class TagRule:
    """What a profile says about one bag-info.txt label."""

    label: str
    required: bool = False
    values: tuple[str, ...] = ()
    repeatable: bool = True
    description: str = ""


@dataclass(frozen=True)
class Profile:
    """A checked BagIt profile. ``None`` in an ``*_allowed`` field means "not restricted"."""

    identifier: str
    spec_version: str
    version: str
    info: Mapping[str, str]
    bag_info: tuple[TagRule, ...] = ()
    manifests_required: tuple[str, ...] = ()
    manifests_allowed: tuple[str, ...] | None = None
    allow_fetch: bool = True
    fetch_required: bool = False
    data_empty: bool = False
    serialization: str = "optional"
    accept_serialization: tuple[str, ...] = ()
    accept_bagit_version: tuple[str, ...] = ()
    tag_manifests_required: tuple[str, ...] = ()
    tag_manifests_allowed: tuple[str, ...] | None = None
    tag_files_required: tuple[str, ...] = ()
    tag_files_allowed: tuple[str, ...] | None = None
    payload_files_required: tuple[str, ...] = ()
    payload_files_allowed: tuple[str, ...] | None = None
    source: str = ""
    name: str = ""
    warnings: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def rule(self, label: str) -> TagRule | None:
        """The Bag-Info rule for ``label`` (labels compare without regard to case)."""
        want = label.lower()
        return next((r for r in self.bag_info if r.label.lower() == want), None)


# -- glob(7) patterns --------------------------------------------------------------------------

def _glob_regex(pattern: str) -> re.Pattern[str]:
    """glob(7) pathname matching: ``*`` and ``?`` never match ``/``; ``[...]`` and ``[!...]`` classes."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            while i + 1 < len(pattern) and pattern[i + 1] == "*":
                i += 1  # glob(7) has no '**'; several stars match what one star matches
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1: i + 2] in ("!", "]") else i + 1)
            if end < 0:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1:end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\").replace("/", "") + "]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL)


@dataclass(frozen=True)
class PathPatterns:
    """A ``*-Files-Allowed`` list. A path is allowed when it, or a folder it lies in, matches a
    pattern: so ``*`` allows every tag file, and ``data/sound/*`` everything below data/sound/.
    """

    patterns: tuple[str, ...]

    @functools.cached_property
    def _compiled(self) -> list[re.Pattern[str]]:
        # compiled once: a million payload files are each matched against every pattern
        return [_glob_regex(p.rstrip("/") if p != "/" else p) for p in self.patterns]

    def allows(self, path: str) -> bool:
        compiled = self._compiled
        parts = path.rstrip("/").split("/")
        for n in range(len(parts), 0, -1):
            prefix = "/".join(parts[:n])
            if any(rx.match(prefix) for rx in compiled):
                return True
        return False

    def may_hold(self, folder: str) -> bool:
        """Whether some allowed path could lie inside ``folder`` (for required folders)."""
        if self.allows(folder):
            return True
        depth = len(folder.rstrip("/").split("/"))
        for p in self.patterns:
            segments = p.rstrip("/").split("/")
            if len(segments) > depth and _glob_regex("/".join(segments[:depth])).match(folder.rstrip("/")):
                return True
        return False


# -- parsing -----------------------------------------------------------------------------------

def _bad(source: str, reason: str) -> BadProfile:
    return BadProfile(path=source, reason=reason)


def _describe(value: Any) -> str:
    kind = {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}.get(type(value), type(value).__name__)
    return f"{json.dumps(value)[:80]} ({kind})"


def _strings(raw: Mapping[str, Any], key: str, source: str, *, allow_empty: bool = True) -> tuple[str, ...] | None:
    if key not in raw:
        return None
    value = raw[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(source, f"{key} must be a list of strings, found {_describe(value)}")
    if not allow_empty and not value:
        raise _bad(source, f"{key} must name at least one value, found an empty list")
    return tuple(value)


def _bool(raw: Mapping[str, Any], key: str, source: str, default: bool) -> bool:
    if key not in raw:
        return default
    value = raw[key]
    if not isinstance(value, bool):
        raise _bad(source, f"{key} must be true or false, found {_describe(value)}")
    return value


def _algorithms(raw: Mapping[str, Any], key: str, source: str) -> tuple[str, ...] | None:
    names = _strings(raw, key, source)
    if names is None:
        return None
    for n in names:
        if not re.fullmatch(r"[A-Za-z0-9-]+", n):
            raise _bad(source, f"{key} lists {n!r}, which is not a manifest algorithm name (such as sha256): the list holds names, not file names")
    return tuple(n.lower() for n in names)


def version_key(text: str) -> tuple[int, ...]:
    """'1.0' -> (1,), '1.4.0' -> (1, 4): versions compare with trailing zeros ignored."""
    parts = [int(p) for p in text.split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def parse_profile(raw: Any, *, source: str = "<profile>", name: str = "") -> Profile:
    """Check a decoded profile against the specification and build a :class:`Profile`."""
    if not isinstance(raw, dict):
        raise _bad(source, f"the top level must be a JSON object, found {_describe(raw)}")
    warnings: list[str] = []
    for key in raw:
        if key not in FIELDS:
            close = next((f for f in FIELDS if f.lower() == str(key).lower()), None)
            hint = f" (did you mean {close}?)" if close else ""
            warnings.append(f"top-level key {key!r} is not defined by the BagIt Profiles specification and is ignored{hint}")

    info_raw = raw.get("BagIt-Profile-Info")
    if not isinstance(info_raw, dict):
        raise _bad(source, "BagIt-Profile-Info is required and must be an object" if info_raw is None
                   else f"BagIt-Profile-Info must be an object, found {_describe(info_raw)}")
    for key, value in info_raw.items():
        if not isinstance(value, str):
            raise _bad(source, f"BagIt-Profile-Info {key} must be a string, found {_describe(value)}")
        if key not in INFO_REQUIRED + INFO_OPTIONAL:
            warnings.append(f"BagIt-Profile-Info key {key!r} is not defined by the specification and is ignored")
    spec_version = info_raw.get("BagIt-Profile-Version", DEFAULT_SPEC_VERSION).strip()
    if not re.fullmatch(r"\d+(\.\d+)*", spec_version):
        raise _bad(source, f"BagIt-Profile-Info BagIt-Profile-Version {spec_version!r} is not a version number")
    if version_key(spec_version) < version_key("1.1.0"):
        raise _bad(source, f"BagIt-Profile-Info BagIt-Profile-Version {spec_version} predates 1.1.0; preserve reads profiles written for 1.1.0 to 1.4.0")
    if version_key(spec_version) > version_key("1.4.0"):
        warnings.append(f"BagIt-Profile-Version {spec_version} is newer than 1.4.0, the newest preserve knows; fields it does not know are ignored")
    missing = [k for k in INFO_REQUIRED if not str(info_raw.get(k, "")).strip()]
    if version_key(spec_version) >= version_key("1.2.0") and "BagIt-Profile-Version" not in info_raw:
        missing.append("BagIt-Profile-Version")
    if missing:
        raise _bad(source, f"BagIt-Profile-Info lacks {', '.join(missing)} (required by the specification)")
    identifier = info_raw["BagIt-Profile-Identifier"].strip()
    if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$", identifier):
        raise _bad(source, f"BagIt-Profile-Info BagIt-Profile-Identifier {identifier!r} is not a URI")

    rules = _bag_info_rules(raw.get("Bag-Info", {}), source, warnings)

    serialization = raw.get("Serialization", "optional")
    if serialization not in SERIALIZATION_VALUES:
        raise _bad(source, f"Serialization must be one of forbidden, required, optional; found {_describe(serialization)}")
    accept_ser = _strings(raw, "Accept-Serialization", source) or ()
    if serialization == "required" and not accept_ser:
        raise _bad(source, "Serialization is required but Accept-Serialization names no MIME type")
    if serialization == "optional" and not accept_ser and "Accept-Serialization" in raw:
        warnings.append("Serialization is optional but Accept-Serialization is empty: any serialization preserve reads is accepted")
    versions = _strings(raw, "Accept-BagIt-Version", source, allow_empty=False)
    if versions is None:
        raise _bad(source, "Accept-BagIt-Version is required (a list of BagIt versions such as \"1.0\")")
    for v in versions:
        if not re.fullmatch(r"\d+(\.\d+)*", v.strip()):
            raise _bad(source, f"Accept-BagIt-Version lists {v!r}, which is not a version number")

    allow_fetch = _bool(raw, "Allow-Fetch.txt", source, True)
    fetch_required = _bool(raw, "Fetch.txt-Required", source, False)
    if fetch_required and not allow_fetch:
        raise _bad(source, "Fetch.txt-Required is true but Allow-Fetch.txt is false")

    m_req = _algorithms(raw, "Manifests-Required", source) or ()
    m_allow = _algorithms(raw, "Manifests-Allowed", source)
    t_req = _algorithms(raw, "Tag-Manifests-Required", source) or ()
    t_allow = _algorithms(raw, "Tag-Manifests-Allowed", source)
    for req, allow, label in ((m_req, m_allow, "Manifests"), (t_req, t_allow, "Tag-Manifests")):
        if allow is not None and (extra := [a for a in req if a not in allow]):
            raise _bad(source, f"{label}-Required lists {', '.join(extra)}, missing from {label}-Allowed ({', '.join(allow) or 'empty'})")

    tf_req = _strings(raw, "Tag-Files-Required", source) or ()
    tf_allow = _strings(raw, "Tag-Files-Allowed", source)
    pf_req = _strings(raw, "Payload-Files-Required", source) or ()
    pf_allow = _strings(raw, "Payload-Files-Allowed", source)
    for path in tf_req:
        if path.startswith("/") or ".." in path.split("/") or path.startswith("data/"):
            raise _bad(source, f"Tag-Files-Required lists {path!r}, which is not a tag file path relative to the bag")
    for path in pf_req:
        if not path.startswith("data/") or ".." in path.split("/"):
            raise _bad(source, f"Payload-Files-Required lists {path!r}; payload paths start with data/")
    for req_list, allow_list, label in ((tf_req, tf_allow, "Tag-Files"), (pf_req, pf_allow, "Payload-Files")):
        if allow_list is None:
            continue
        patterns = PathPatterns(allow_list)
        for path in req_list:
            covered = patterns.may_hold(path) if path.endswith("/") else patterns.allows(path)
            if not covered:
                raise _bad(source, f"{label}-Required lists {path!r}, which no pattern of {label}-Allowed covers")

    return Profile(
        identifier=identifier, spec_version=spec_version, version=info_raw["Version"].strip(),
        info=dict(info_raw), bag_info=rules, manifests_required=m_req, manifests_allowed=m_allow,
        allow_fetch=allow_fetch, fetch_required=fetch_required,
        data_empty=_bool(raw, "Data-Empty", source, False), serialization=serialization,
        accept_serialization=tuple(accept_ser), accept_bagit_version=tuple(v.strip() for v in versions),
        tag_manifests_required=t_req, tag_manifests_allowed=t_allow, tag_files_required=tf_req,
        tag_files_allowed=tf_allow, payload_files_required=pf_req, payload_files_allowed=pf_allow,
        source=source, name=name or identifier, warnings=tuple(warnings), raw=raw,
    )


def _bag_info_rules(section: Any, source: str, warnings: list[str]) -> tuple[TagRule, ...]:
    if not isinstance(section, dict):
        raise _bad(source, f"Bag-Info must be an object, found {_describe(section)}")
    rules: list[TagRule] = []
    seen: dict[str, str] = {}
    for label, spec in section.items():
        where = f"Bag-Info {label!r}"
        if not isinstance(spec, dict):
            raise _bad(source, f"{where} must be an object such as {{\"required\": true}}, found {_describe(spec)}")
        if label.lower() in seen:
            raise _bad(source, f"{where} is listed twice (also as {seen[label.lower()]!r}); labels compare without regard to case")
        seen[label.lower()] = label
        if not label.strip() or ":" in label:
            raise _bad(source, f"{where} is not a valid bag-info label")
        for key in spec:
            if key not in TAG_OPTIONS:
                warnings.append(f"{where} option {key!r} is not defined by the specification and is ignored")
        if label.lower() == "bagit-profile-identifier":
            warnings.append(f"{where}: the specification says BagIt-Profile-Identifier SHOULD NOT be listed under Bag-Info (it is always required)")
        values = _strings(spec, "values", source)
        description = spec.get("description", "")
        if not isinstance(description, str):
            raise _bad(source, f"{where} description must be a string, found {_describe(description)}")
        rules.append(TagRule(
            label=label, required=_bool(spec, "required", source, False), values=values or (),
            repeatable=_bool(spec, "repeatable", source, True), description=description))
    return tuple(rules)


# -- finding profiles --------------------------------------------------------------------------

def shipped_dir() -> Path:
    """The folder holding the profiles installed with preserve."""
    from importlib.util import find_spec

    # preserve.profiles_data is a data-only package (no __init__.py: in the repository it is the
    # top-level profiles/ folder), so its folder comes from the import spec, not from a module file.
    try:
        spec = find_spec("preserve.profiles_data")
    except ModuleNotFoundError:
        spec = None
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        if Path(location).is_dir():
            return Path(location)
    # A checkout (run in place, or installed editable, whose finder does not resolve data-only
    # packages): the profiles sit in the top-level profiles/ folder.
    return Path(__file__).resolve().parent.parent.parent / "profiles"


def user_dir() -> Path:
    """The user's own profiles: any ``*.json`` here is found by short name or identifier."""
    override = os.environ.get("PRESERVE_PROFILES_DIR")
    if override:
        return Path(override)
    from platformdirs import user_data_dir

    return Path(user_data_dir("preserve")) / "profiles"


def _candidates(search: Sequence[Path]) -> Iterator[Path]:
    for folder in search:
        if folder.is_dir():
            yield from sorted(folder.glob("*.json"))


def read_profile_file(path: Path, name: str = "") -> Profile:
    """Read and check one profile file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _bad(str(path), f"cannot be read ({exc.strerror})") from exc
    try:
        raw = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise _bad(str(path), f"is not UTF-8 text (byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise _bad(str(path), f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    return parse_profile(raw, source=str(path), name=name or path.stem)


def known_profiles(search: Sequence[Path] | None = None) -> list[Profile]:
    """Every readable profile in the shipped and user folders (unreadable ones are skipped)."""
    out = []
    for path in _candidates(search if search is not None else (shipped_dir(), user_dir())):
        try:
            out.append(read_profile_file(path))
        except BadProfile:
            continue
    return out


def _raw_identifier(path: Path) -> str | None:
    """The BagIt-Profile-Identifier a profile file declares, read without checking the profile."""
    try:
        raw = json.loads(path.read_bytes().decode("utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    info = raw.get("BagIt-Profile-Info") if isinstance(raw, dict) else None
    ident = info.get("BagIt-Profile-Identifier") if isinstance(info, dict) else None
    return ident.strip() if isinstance(ident, str) else None


@dataclass(frozen=True)
class DeclaredProfiles:
    """The profiles a bag names in its BagIt-Profile-Identifier values, as found on this machine.

    ``known``: profiles to check the bag against; ``unknown``: identifiers no shipped or local
    profile carries; ``unusable``: (identifier, why) for a local profile file that carries the
    identifier but cannot be applied.
    """

    known: tuple[Profile, ...] = ()
    unknown: tuple[str, ...] = ()
    unusable: tuple[tuple[str, str], ...] = ()


def declared_profiles(identifiers: Iterable[str], *, search: Sequence[Path] | None = None) -> DeclaredProfiles:
    """Find the profiles named by a bag's BagIt-Profile-Identifier values, without the network.

    A declared value is matched only against the identifiers of the shipped profiles and those in
    :func:`user_dir` (or ``search``); unlike :func:`load_profile`'s argument it is never taken for
    a path or a short name, since it comes from the bag and not from the person running preserve.
    """
    folders = list(search) if search is not None else [shipped_dir(), user_dir()]
    known: list[Profile] = []
    unknown: list[str] = []
    unusable: list[tuple[str, str]] = []
    for ident in dict.fromkeys(i.strip() for i in identifiers if i.strip()):
        match = next((c for c in _candidates(folders) if _raw_identifier(c) == ident), None)
        if match is None:
            unknown.append(ident)
            continue
        try:
            known.append(read_profile_file(match))
        except BadProfile as exc:
            unusable.append((ident, str(exc)))
    return DeclaredProfiles(tuple(known), tuple(unknown), tuple(unusable))


def load_profile(ref: str | os.PathLike[str], *, search: Sequence[Path] | None = None) -> Profile:
    """Load a profile: a path to a JSON file, a short name (``preserve-audio-aip``) or an identifier.

    Identifiers are matched against the ``BagIt-Profile-Identifier`` of the shipped profiles and
    those in :func:`user_dir` (or ``search``); the network is never used.
    """
    text = os.fspath(ref)
    path = Path(text)
    if path.is_file():
        return read_profile_file(path)
    folders = list(search) if search is not None else [shipped_dir(), user_dir()]
    for candidate in _candidates(folders):
        if candidate.stem == text or candidate.name == text:
            return read_profile_file(candidate)
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", text):
        for candidate in _candidates(folders):
            try:
                profile = read_profile_file(candidate)
            except BadProfile:
                if _raw_identifier(candidate) == text:
                    raise  # the profile asked for is there but broken: say why, not "no such profile"
                continue
            if profile.identifier == text:
                return profile
    known = ", ".join(f"{p.name} ({p.identifier})" for p in known_profiles(folders)) or "none"
    looks_like_uri = re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:", text) is not None
    if not looks_like_uri and (path.suffix.lower() == ".json" or os.sep in text):
        raise _bad(text, "no such file")
    raise _bad(text, f"no such file, and no shipped or local profile has this name or identifier (known: {known}); "
                     f"the network is never used: save the profile as a .json file in {user_dir()} or pass its path")
