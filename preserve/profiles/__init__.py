"""BagIt Profiles (specification 1.1.0 to 1.4.0): load, check, validate bags, drive bag creation.

- :func:`load_profile` finds a profile by path, short name or identifier (never the network);
- :func:`validate_profile` checks a bag folder or serialized bag against it, field by field;
- :func:`plan_creation` says how to make a bag that conforms.
"""

from __future__ import annotations

from preserve.profiles.conformance import (
    MIME_TYPES,
    BagFacts,
    DirectoryFacts,
    accepted_mime,
    check_facts,
    fatal_findings,
    fatal_profile_findings,
    payload_findings,
    validate_profile,
)
from preserve.profiles.creation import (
    AUTOMATIC_INFO,
    CreationPlan,
    check_tag_files,
    conformance_violation,
    conforming_finalizer,
    plan_creation,
)
from preserve.profiles.model import (
    AUDIO_AIP_PROFILE_ID,
    FIELDS,
    SPEC_VERSIONS,
    TRANSFER_PROFILE_ID,
    PathPatterns,
    Profile,
    TagRule,
    known_profiles,
    load_profile,
    parse_profile,
    shipped_dir,
    user_dir,
)

__all__ = [
    "AUDIO_AIP_PROFILE_ID",
    "AUTOMATIC_INFO",
    "FIELDS",
    "MIME_TYPES",
    "SPEC_VERSIONS",
    "TRANSFER_PROFILE_ID",
    "BagFacts",
    "CreationPlan",
    "DirectoryFacts",
    "PathPatterns",
    "Profile",
    "TagRule",
    "accepted_mime",
    "check_facts",
    "check_tag_files",
    "conformance_violation",
    "conforming_finalizer",
    "fatal_findings",
    "fatal_profile_findings",
    "known_profiles",
    "load_profile",
    "parse_profile",
    "payload_findings",
    "plan_creation",
    "shipped_dir",
    "user_dir",
    "validate_profile",
]
