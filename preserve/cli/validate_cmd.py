"""``preserve validate BAG``: RFC 8493 completeness and validity; never writes to the bag.

The bag is also checked against the profile its bag-info.txt declares (BagIt-Profile-Identifier)
when that is a profile preserve knows without the network: a shipped one, or one in the user's
profile folder. A declared profile it does not know is named in a note as not checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from preserve.bag.reader import open_bag
from preserve.bag.validate import ValidationReport, validate_bag
from preserve.cli.common import (
    Command,
    ProgressBar,
    emit_json,
    for_people,
    json_option,
    profile_option,
    progress_interval_option,
    quiet_option,
    warn,
    workers_option,
)
from preserve.errors import EXIT_PROBLEMS, BadArchive, InputError, PreserveError, UsageError

if TYPE_CHECKING:
    # the profile modules load only for a bag that declares a profile or a run given one:
    # a plain bag's validation starts faster without them
    from preserve.profiles import Profile

#: The profile identifier's label in bag-info.txt.
PROFILE_LABEL = "BagIt-Profile-Identifier"
#: bag-info.txt larger than this is not read for its declared profile (full validation reads it).
_INFO_LIMIT = 1 << 20


@dataclass
class ProfilePlan:
    """Which profiles a run checks, and what it says about declared profiles it does not check."""

    profiles: list[Profile] = field(default_factory=list)
    declared: bool = False  # the profiles come from the bag's own BagIt-Profile-Identifier
    notes: list[str] = field(default_factory=list)
    not_checked: list[dict[str, str]] = field(default_factory=list)

    def skip(self, identifier: str, reason: str) -> None:
        self.not_checked.append({"identifier": identifier, "reason": reason})
        self.notes.append(f"declared profile {identifier} was not checked: {reason}")

    def to_dict(self) -> dict[str, Any]:
        return {"checked": [{"identifier": p.identifier, "name": p.name, "declared": self.declared}
                            for p in self.profiles],
                "not_checked": self.not_checked}


def render(report: ValidationReport, plan: ProfilePlan | None = None, *, quiet: bool = False) -> None:
    """The findings and the one-line verdict, for people: every value from the bag is escaped.

    ``quiet`` leaves out warnings and notes: errors and the verdict are always printed.
    """
    for f in report.findings:
        if quiet and f.severity != "error":
            continue
        style = "red" if f.severity == "error" else "yellow"
        line = click.style(f"{f.severity}: ", fg=style) + (f"{for_people(f.path)}: " if f.path else "") + for_people(f.message)
        if f.expected is not None or f.found is not None:
            line += f" (expected {for_people(str(f.expected))}, found {for_people(str(f.found))})"
        click.echo(line, err=f.severity == "warning")
    if plan is not None and not quiet:
        if plan.declared:
            for p in plan.profiles:
                click.echo(f"checked against profile {for_people(p.name)} ({for_people(p.identifier)}), "
                           f"as the bag's {PROFILE_LABEL} declares", err=True)
        for note in plan.notes:
            click.echo(f"note: {for_people(note)}", err=True)
    path = for_people(report.path)
    if report.mode == "profile":
        click.echo(f"{path}: INVALID ({len(report.errors)} error(s): the profile cannot accept this bag, "
                   "so nothing was hashed)")
        return
    status = "valid" if report.ok else "INVALID"
    click.echo(f"{path}: {status} ({report.files} files, {report.bytes} bytes, "
               f"{', '.join(for_people(a) for a in report.algorithms) or 'no manifests'}, {len(report.errors)} error(s), "
               f"{len(report.warnings)} warning(s), {report.mode} check)")


@click.command(cls=Command)
@click.argument("bag", type=click.Path(path_type=Path))
@click.option("--fast", is_flag=True, help="Only completeness and Payload-Oxum; no hashing.")
@click.option("--fetch", is_flag=True, help="Download fetch.txt items to check them (nothing is written to the bag).")
@profile_option("Check conformance to this BagIt profile instead of the one the bag declares: a JSON file, "
                "a shipped profile's name (preserve-audio-aip) or a profile identifier URI (matched locally, "
                "never fetched).")
@click.option("--no-profile", is_flag=True,
              help="Do not check the profile the bag declares in BagIt-Profile-Identifier; only BagIt rules apply.")
@workers_option("Parallel readers (default: the number of cores).")
@json_option
@quiet_option
@progress_interval_option
def validate(bag: Path, fast: bool, fetch: bool, profile: str | None, no_profile: bool, workers: int | None,
             as_json: bool, quiet: bool, progress_interval: float) -> None:
    """Validate BAG (BagIt 0.93 to 1.0): every manifest, tag manifest and Payload-Oxum.

    BAG is a bag folder or a serialized bag (.tar, .tar.gz, .zip), which is validated as a
    stream without being extracted (PREMIS/METS sidecars included). Reports every problem, not
    only the first.

    A bag whose bag-info.txt declares a BagIt-Profile-Identifier is also checked against that
    profile when preserve knows it without the network (a shipped profile such as
    preserve-audio-aip, or one saved in the user's profile folder); a declared profile it does
    not know is named in a note as not checked, and the verdict is that of BagIt alone.
    --profile checks the given profile instead; --no-profile skips profile checks.

    A profile's Serialization and Accept-BagIt-Version checks come first: when they fail, only
    they are reported and nothing is hashed. Warnings and notes leave the exit code at 0; any
    error, including a profile violation, exits 1.
    """
    if no_profile and profile:
        raise UsageError("--profile and --no-profile exclude each other: give one or neither")
    try:
        plan = _plan(bag, profile, no_profile)
        for loaded in plan.profiles:
            for w in [] if quiet or as_json else loaded.warnings:
                warn(f"profile {loaded.name}: {w}")
        report = _run(bag, fast, fetch, as_json, workers, quiet, plan.profiles, progress_interval)
    except InputError as exc:
        if as_json:  # a script reading stdout gets an answer, and the exit code stays 3
            emit_json({"valid": False, "error": str(exc)}, path=bag, exit_code=exc.exit_code, problems=[str(exc)])
        raise
    code = 0 if report.ok else EXIT_PROBLEMS
    if as_json:
        emit_json({**report.to_dict(), "profiles": plan.to_dict(), "notes": plan.notes}, path=report.path,
                  exit_code=code, warnings=[_finding(f) for f in report.warnings]
                  + [f"profile {p.name}: {w}" for p in plan.profiles for w in p.warnings],
                  problems=[_finding(f) for f in report.errors])
    else:
        render(report, plan, quiet=quiet)
    if code:
        raise click.exceptions.Exit(code)


def _finding(f: Any) -> dict[str, Any]:
    """A finding as JSON, with the fields it has."""
    return {k: v for k, v in asdict(f).items() if v is not None}


def _plan(bag: Path, profile_ref: str | None, no_profile: bool) -> ProfilePlan:
    """The profiles to check: --profile's, none with --no-profile, else those the bag declares."""
    declared = declared_identifiers(bag)
    if profile_ref:
        from preserve.profiles import load_profile

        profile = load_profile(profile_ref)
        plan = ProfilePlan([profile])
        for ident in declared:
            if ident != profile.identifier:
                plan.skip(ident, f"--profile {profile_ref} was checked instead")
        return plan
    plan = ProfilePlan(declared=True)
    if no_profile:
        for ident in declared:
            plan.skip(ident, "--no-profile was given")
        return plan
    if not declared:
        return plan
    from preserve.profiles.model import declared_profiles, user_dir

    found = declared_profiles(declared)
    plan.profiles.extend(found.known)
    for ident in found.unknown:
        plan.skip(ident, "no shipped or local profile has this identifier, and the network is never used; "
                         f"save the profile as a .json file in {user_dir()} or pass it with --profile FILE")
    for ident, why in found.unusable:
        plan.skip(ident, f"the local profile with this identifier cannot be used: {why}")
    return plan


def declared_identifiers(bag: Path) -> list[str]:
    """The BagIt-Profile-Identifier values of a bag folder or serialized bag; [] when there is
    none or the bag cannot be read (validation then reports why)."""
    try:
        if bag.is_file():
            return _archive_identifiers(bag)
        return open_bag(bag).info_values(PROFILE_LABEL) if bag.is_dir() else []
    except (PreserveError, OSError):
        return []


def _archive_identifiers(archive: Path) -> list[str]:
    """Read bagit.txt and bag-info.txt out of an archive (preserve writes them first, so this
    stops after a few members; another tool's archive may be read to its end, unhashed)."""
    # archives only: a folder's validation never loads the archive modules
    import tempfile

    from preserve.serialize import iter_members

    info_names = {"bag-info.txt", "package-info.txt"}  # package-info.txt: BagIt 0.93 to 0.95
    got: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="preserve-declared-") as tmp:
        try:
            for m in iter_members(archive):
                if m.problem is not None or m.kind != "file" or m.size > _INFO_LIMIT or m.rel in got \
                        or m.rel not in {"bagit.txt", *info_names}:
                    continue
                with open(Path(tmp) / m.rel, "wb") as out:
                    for chunk in m.chunks():
                        out.write(chunk)
                got.add(m.rel)
                if "bagit.txt" in got and got & info_names:
                    break
        except BadArchive:
            return []
        if not (Path(tmp) / "bagit.txt").is_file():
            return []
        return open_bag(tmp).info_values(PROFILE_LABEL)


def _run(bag: Path, fast: bool, fetch: bool, as_json: bool, workers: int | None, quiet: bool,
         profiles: Sequence[Profile], interval: float) -> ValidationReport:
    bar = ProgressBar(0, "validating", enabled=not quiet and not as_json, interval=interval)
    first = profiles[0] if profiles else None
    if profiles:
        from preserve.profiles import fatal_profile_findings, validate_profile
    with bar.shown():
        if bag.is_file():
            from preserve.serialize import validate_archive

            # the first profile's fatal checks run first, inside; the sidecars are spooled while streaming
            report = validate_archive(bag, fast=fast, fetch=fetch, profile=first, progress=bar, on_total=bar.set_total,
                                      sidecars=True)
            if report.mode != "profile":
                for other in profiles[1:]:
                    report.findings.extend(validate_profile(bag, other))
        elif fatal := [f for p in profiles for f in fatal_profile_findings(bag, p)]:
            # the specification puts these first: a bag the profile cannot accept is not hashed
            report = ValidationReport(path=str(bag), findings=fatal, mode="profile")
        else:
            report = validate_bag(bag, fast=fast, fetch=fetch, workers=workers, progress=bar, on_total=bar.set_total,
                                  processes=None if workers is None else 0)
            for profile in profiles:
                report.findings.extend(validate_profile(bag, profile))
            if (bag / "metadata" / "mets.xml").is_file():
                # PREMIS/METS sidecars: well-formed, consistent with the manifests, schema-valid if installed.
                from preserve.sidecars.check import check_sidecars

                report.findings.extend(check_sidecars(bag))
    return report
