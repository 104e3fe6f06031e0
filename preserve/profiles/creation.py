"""Creating bags that conform to a profile: which algorithms, which bag-info values, which format.

:func:`plan_creation` turns a profile and the caller's choices into a :class:`CreationPlan`, or
refuses with one :class:`~preserve.errors.UsageError` that lists everything missing or in
conflict, so a curator fixes the command once instead of once per problem.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from preserve.bag.reader import open_bag
from preserve.errors import ProfileViolation, UsageError
from preserve.fixity import ALGORITHMS, fsync_path
from preserve.profiles.conformance import MIME_TYPES, DirectoryFacts, accepted_mime, check_facts
from preserve.profiles.model import PathPatterns, Profile, version_key

#: bag-info.txt labels the bag writer fills in by itself (see preserve.bag.writer).
AUTOMATIC_INFO = ("Bagging-Date", "Payload-Oxum", "Bag-Size", "Bag-Software-Agent")
#: The BagIt version preserve writes.
WRITTEN_BAGIT_VERSION = "1.0"
_DEFAULT_ALGORITHMS = ("sha256", "sha512")


@dataclass(frozen=True)
class CreationPlan:
    """What to pass to the bag writer so the bag conforms to ``profile``."""

    algorithms: tuple[str, ...]
    info: list[tuple[str, str]]
    serialization: str | None
    profile: Profile | None = None
    tag_files_required: tuple[str, ...] = ()


def _writable(profile: Profile) -> list[str]:
    """The formats preserve writes that the profile accepts, in the profile's order of preference."""
    out: list[str] = []
    for mime in profile.accept_serialization:
        for fmt, names in MIME_TYPES.items():
            if mime.lower() in names and fmt not in out:
                out.append(fmt)
    return out


def plan_creation(
    profile: Profile,
    algorithms: Sequence[str] | None,
    info: Sequence[tuple[str, str]],
    *,
    serialization: str | None = None,
    automatic: Sequence[str] = AUTOMATIC_INFO,
) -> CreationPlan:
    """Plan a bag conforming to ``profile``.

    ``algorithms`` are the caller's choice (empty: let the profile decide; preserve writes the
    same algorithms for manifests and tag manifests). ``info`` holds the bag-info values given
    (``--info`` or the collection); ``automatic`` the labels the writer adds itself. A required
    value missing, a value the profile does not allow, or an algorithm or serialization the
    profile refuses raises :class:`UsageError` listing every problem.
    """
    problems: list[str] = []
    name = profile.name

    chosen = [a.lower() for a in (algorithms or ())]
    algs = list(dict.fromkeys([*chosen, *profile.manifests_required, *profile.tag_manifests_required]))
    if not algs:
        candidates = [a for a in _DEFAULT_ALGORITHMS
                      if (profile.manifests_allowed is None or a in profile.manifests_allowed)
                      and (profile.tag_manifests_allowed is None or a in profile.tag_manifests_allowed)]
        if not candidates:
            both = [a for a in (profile.manifests_allowed or ALGORITHMS)
                    if a in ALGORITHMS and (profile.tag_manifests_allowed is None or a in profile.tag_manifests_allowed)]
            candidates = both[:1]
        algs = candidates
    for a in algs:
        if a not in ALGORITHMS or a == "xxh3-128":
            problems.append(f"the profile needs {a} manifests, which preserve cannot write")
        if profile.manifests_allowed is not None and a not in profile.manifests_allowed:
            problems.append(f"Manifests-Allowed ({', '.join(profile.manifests_allowed)}) does not allow {a}")
        if profile.tag_manifests_allowed is not None and a not in profile.tag_manifests_allowed:
            problems.append(f"Tag-Manifests-Allowed ({', '.join(profile.tag_manifests_allowed)}) does not allow {a} "
                            "(preserve writes tag manifests with the payload manifests' algorithms)")
    if not algs:
        problems.append("no manifest algorithm satisfies both Manifests-Allowed and Tag-Manifests-Allowed")

    if not any(version_key(v) == version_key(WRITTEN_BAGIT_VERSION) for v in profile.accept_bagit_version):
        problems.append(f"Accept-BagIt-Version ({', '.join(profile.accept_bagit_version)}) does not accept BagIt {WRITTEN_BAGIT_VERSION}, the version preserve writes")
    if profile.fetch_required:
        problems.append("Fetch.txt-Required is true, and preserve does not write fetch.txt")

    fmt = serialization
    if fmt is not None and fmt not in MIME_TYPES:
        problems.append(f"unknown serialization {fmt!r} (choose tar, tar.gz or zip)")
    elif fmt is not None and profile.serialization == "forbidden":
        problems.append(f"Serialization is forbidden by the profile; drop --serialize {fmt}")
    elif fmt is not None and accepted_mime(profile, fmt) is None:
        problems.append(f"Accept-Serialization ({', '.join(profile.accept_serialization)}) does not accept {fmt}")
    elif fmt is None and profile.serialization == "required":
        writable = _writable(profile)
        if writable:
            fmt = writable[0]
        else:
            problems.append(f"Serialization is required, and preserve writes none of {', '.join(profile.accept_serialization)}")

    out_info = [(k, v) for k, v in info]
    given = {k.lower() for k, v in out_info if v.strip()}
    automatic_lower = {a.lower() for a in automatic}
    if not any(k.lower() == "bagit-profile-identifier" and v == profile.identifier for k, v in out_info):
        out_info.append(("BagIt-Profile-Identifier", profile.identifier))
    missing: list[str] = []
    for rule in profile.bag_info:
        key = rule.label.lower()
        values = [v for k, v in out_info if k.lower() == key]
        if rule.required and key not in given and key not in automatic_lower and key != "bagit-profile-identifier":
            if len(rule.values) == 1:
                out_info.append((rule.label, rule.values[0]))  # only one value is allowed: use it
                continue
            hint = f" (one of: {', '.join(repr(v) for v in rule.values)})" if rule.values else ""
            missing.append(f"{rule.label}{hint}")
        for v in values:
            if rule.values and v not in rule.values:
                problems.append(f"Bag-Info {rule.label}: {v!r} is not one of {', '.join(repr(a) for a in rule.values)}")
        if not rule.repeatable and len(values) > 1:
            problems.append(f"Bag-Info {rule.label} is not repeatable, and {len(values)} values were given")
    if missing:
        problems.insert(0, f"required bag-info values are missing: {', '.join(missing)}; pass them with --info LABEL=VALUE")
    if problems:
        raise UsageError(f"cannot make a bag conforming to profile {name} ({profile.identifier}):\n  - " + "\n  - ".join(problems))
    return CreationPlan(tuple(algs), out_info, fmt, profile, profile.tag_files_required)


def check_tag_files(profile: Profile, written: Sequence[str], command: str, hint: str = "") -> None:
    """Refuse, before any work, a profile whose tag file rules the bag ``command`` makes can never meet.

    ``written`` are the tag files (outside BagIt's own) that ``command`` always writes: each must be
    allowed by Tag-Files-Allowed, and every Tag-Files-Required file must be among them.
    """
    problems: list[str] = []
    missing = [t for t in profile.tag_files_required if t not in written]
    if missing:
        problems.append(f"Tag-Files-Required lists {', '.join(missing)}, which {command} does not write{hint}")
    if profile.tag_files_allowed is not None:
        patterns = PathPatterns(profile.tag_files_allowed)
        refused = [t for t in written if not patterns.allows(t)]
        if refused:
            allowed = ", ".join(profile.tag_files_allowed) or "none"
            problems.append(f"Tag-Files-Allowed ({allowed}) does not allow {', '.join(refused)}, which {command} always writes")
    if problems:
        raise UsageError(f"cannot make a bag conforming to profile {profile.name} ({profile.identifier}):\n  - " + "\n  - ".join(problems))


def conformance_violation(dest: Path, profile: Profile, failures: Sequence[object]) -> ProfileViolation:
    """The error for a bag that would break ``profile``; ``failures`` (the findings) ride along
    in its fields for the command line to list."""
    return ProfileViolation(f"{dest}: the bag does not conform to profile {profile.name} ({len(failures)} problem(s)); "
                            "nothing was written", path=str(dest), profile=profile.name, count=len(failures),
                            failures=list(failures))


def conforming_finalizer(profile: Profile, serialization: str | None,
                         then: Callable[[Path, Path], None] | None = None) -> Callable[[Path, Path], None]:
    """A ``finalize`` hook for :func:`preserve.bag.writer.create_bag` that checks the staged bag,
    complete with its tag manifests, against ``profile`` before it lands at DEST (as the
    ``serialization`` it will become), so a non-conforming bag is never written there.
    ``then`` moves it into place (None: rename, as create_bag does without a hook).
    """

    def finalize(staging: Path, dest: Path) -> None:
        failures = check_facts(DirectoryFacts(open_bag(staging), serialization), profile)
        if failures:
            raise conformance_violation(dest, profile, failures)
        if then is not None:
            then(staging, dest)
        else:
            os.rename(staging, dest)
            fsync_path(dest.parent)

    return finalize
