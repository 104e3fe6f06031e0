"""Copies per bag and the NDSA Levels of Digital Preservation 2.0 storage level they meet.

The storage row of the NDSA Levels (2019), as judged here from the ledger and the locations
declared for the origin and each target in ``preserve.toml``:

Level 1  two complete copies that are not collocated (declared sites differ);
Level 2  three complete copies, at least one in a separate geographic location (another region);
Level 3  Level 2, and at least one copy in a place with a different disaster threat than the
         others (its declared threats share none with the other copies');
Level 4  at least three copies in different regions, each with a different disaster threat (no
         declared threat shared by any two), on more than one provider.

A copy counts when its latest replication verified every object and no later audit of it found
problems or left objects pending a restore; the original counts unless its latest audit failed. Where a location or threat is not declared, the level is not granted and the row says
what to declare: the judgement never assumes separation it cannot see.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from preserve.replication.config import Location


@dataclass(frozen=True)
class Copy:
    """One complete, verified copy of a bag and where it is."""

    where: str
    place: Location


def storage_level(copies: list[Copy]) -> tuple[int, str]:
    """(NDSA 2.0 storage level met, what the next level needs)."""
    n = len(copies)
    sites = [c.place.site for c in copies]
    regions = [c.place.region for c in copies]
    if n < 2:
        return 0, "Level 1 needs a second complete copy (preserve replicate)"
    if any(s is None for s in sites):
        return 0, "Level 1 needs declared sites: set site for [origin] and each target in preserve.toml"
    if len(set(sites)) < 2:
        return 0, "Level 1 needs two copies that are not collocated (all declared sites are the same)"
    if n < 3:
        return 1, "Level 2 needs a third complete copy"
    if any(r is None for r in regions):
        return 1, "Level 2 needs declared regions: set region for [origin] and each target in preserve.toml"
    if len(set(regions)) < 2:
        return 1, "Level 2 needs a copy in a separate geographic location (another region)"
    threats = [set(c.place.threats) for c in copies]
    if any(not t for t in threats):
        return 2, "Level 3 needs declared disaster threats for every copy (threats = [...] in preserve.toml)"
    distinct = [i for i, t in enumerate(threats) if not t & set().union(*(o for j, o in enumerate(threats) if j != i))]
    if not distinct:
        return 2, "Level 3 needs a copy whose disaster threats differ from the other copies'"
    pairwise = all(not (threats[i] & threats[j]) for i in range(n) for j in range(i + 1, n))
    providers = {c.place.provider for c in copies if c.place.provider}
    if len(set(regions)) < 3 or not pairwise:
        return 3, "Level 4 needs three copies in different regions, each with a different disaster threat"
    if len(providers) < 2:
        return 3, "Level 4 needs storage diversification (more than one declared provider)"
    return 4, "highest level"


def bag_copies(location: str, replicas: list[Any], states: dict[str, Any]) -> tuple[list[Copy], list[str]]:
    """The verified copies of the bag at ``location`` (itself first), from its ledger replica
    records and the audit state of each location, with notes on copies that do not count
    (incomplete, or whose latest audit failed or waits for a restore: the original included)."""
    latest: dict[str, Any] = {}
    for r in replicas:
        latest[r.location] = r
    origin = Location()
    notes: list[str] = []
    copies: list[Copy] = []
    for where, r in sorted(latest.items()):
        detail = r.detail or {}
        if detail.get("origin"):
            origin = Location.from_dict(detail["origin"])
        if r.outcome != "pass":
            notes.append(f"{where}: latest replication incomplete")
            continue
        state = states.get(where)
        if state is not None and state.last_audit and state.last_audit >= r.ended and state.last_outcome != "pass":
            notes.append(f"{where}: latest audit ({state.last_tier}) {_unverified(state.last_outcome)}")
            continue
        copies.append(Copy(where, Location.from_dict(detail.get("place"))))
    own = states.get(location)
    if own is not None and own.last_outcome is not None and own.last_outcome != "pass":
        # the original is a copy like the others: one whose latest audit failed does not count
        notes.insert(0, f"{location}: latest audit of the original ({own.last_tier}) {_unverified(own.last_outcome)}")
        return copies, notes
    return [Copy(location, origin), *copies], notes


def _unverified(outcome: str | None) -> str:
    return "pending an archive-class restore" if outcome == "pending" else "failed"


def copies_rows(ctx: Any) -> list[dict[str, Any]]:
    """Report section rows: the bags (not the replicas' own rows) with their copies and level, at
    most ``ctx.max_rows`` of them, least recently audited first; the section's count and the bags
    by copies and by level (``ctx.tallies``) are over every bag.

    Only the bags that have replicas, or are one, are read one by one; every other bag is its only
    copy (none while its latest audit failed or waits), so those are counted from the totals."""
    replicas = ctx.ledger.all_replicas()
    by_bag: dict[int, list[Any]] = {}
    for r in replicas:
        by_bag.setdefault(r.bag_id, []).append(r)
    replica_locations = {r.location for r in replicas}
    involved = ctx.ledger.states_at(ids=list(by_bag), locations=sorted(replica_locations))
    states = {s.location: s for s in involved}

    def judged(s: Any) -> tuple[list[Copy], list[str], int, str]:
        states.setdefault(s.location, s)
        copies, notes = bag_copies(s.location, by_bag.get(s.id, []), states)
        return (copies, notes, *storage_level(copies))

    by_copies: Counter[int] = Counter()
    by_level: Counter[int] = Counter()
    for s in involved:
        if s.location not in replica_locations:
            copies, _, level, _ = judged(s)
            by_copies[len(copies)] += 1
            by_level[level] += 1
    others = ctx.totals.bags - len(involved)
    unverified = ctx.totals.failing + ctx.totals.pending - sum(s.last_outcome in ("fail", "pending") for s in involved)
    by_copies.update({1: others - unverified, 0: unverified})
    by_level[0] += others
    ctx.tallies["copies"] = {n: c for n, c in sorted(by_copies.items()) if c}
    ctx.tallies["level"] = {n: c for n, c in sorted(by_level.items()) if c}
    ctx.counted["copies"] = ctx.totals.bags - sum(s.location in replica_locations for s in involved)
    rows = []
    for s in ctx.bags(extra=len(replica_locations)):
        if s.location in replica_locations:
            continue  # a replica's own row (its remote audits), counted under its bag
        copies, notes, level, need = judged(s)
        rows.append({"identifier": s.identifier, "location": s.location, "copies": len(copies), "level": level,
                     "places": _places(copies),
                     "next": need + ("" if not notes else f" ({'; '.join(notes)})"),
                     "replicas": [c.where for c in copies if c.where != s.location]})
    return rows


def _places(copies: list[Copy]) -> str:
    """Each place once, with how many copies it holds when more than one ("location not declared
    (2 copies)" rather than the same words twice)."""
    named = [_place(c.place) for c in copies]
    return "; ".join(p if named.count(p) == 1 else f"{p} ({named.count(p)} copies)" for p in dict.fromkeys(named))


def _place(p: Location) -> str:
    parts = [x for x in (p.site, p.region, p.provider) if x]
    return " / ".join(parts) if parts else "location not declared"
