"""Which pushed tags a policy takes: include/exclude globs and semantic-version rules.

``semver`` says how far a device may move from the version it runs: ``patch`` (same
major.minor), ``minor`` (same major), ``major`` (any newer release), ``all`` (any newer
version, pre-releases included). Pre-releases are otherwise taken only when allowed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Literal

from fleetwave.domain.vocabulary import SEMVER_RULES

__all__ = ["SEMVER_RULES", "SemverRule", "TagRule", "Version"]

SemverRule = Literal["major", "minor", "patch", "all"]

_VERSION = re.compile(
    r"^v?(?P<major>0|[1-9]\d*)(?:\.(?P<minor>0|[1-9]\d*))?(?:\.(?P<patch>0|[1-9]\d*))?"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z.-]+)?$"
)


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    patch: int
    release: bool  # a release sorts after its pre-releases
    prerelease: tuple[tuple[int, int | str], ...]

    @property
    def is_prerelease(self) -> bool:
        return not self.release


def parse_version(tag: str) -> Version | None:
    match = _VERSION.fullmatch(tag)
    if match is None:
        return None
    pre = match["pre"]
    if pre is not None and match["minor"] is None:
        return None  # "2024-01-01" is a date, not version 2024 with pre-release "01-01"
    identifiers = tuple(
        (0, int(part)) if part.isdigit() else (1, part) for part in (pre.split(".") if pre else [])
    )
    return Version(
        major=int(match["major"]),
        minor=int(match["minor"] or 0),
        patch=int(match["patch"] or 0),
        release=pre is None,
        prerelease=identifiers,
    )


@dataclass(frozen=True)
class TagRule:
    semver: SemverRule | None = None
    allow_prerelease: bool = False
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def as_json(self) -> dict[str, object]:
        return {
            "semver": self.semver,
            "allow_prerelease": self.allow_prerelease,
            "include": list(self.include),
            "exclude": list(self.exclude),
        }

    @property
    def takes_prereleases(self) -> bool:
        return self.allow_prerelease or self.semver == "all"


def pushed_tag_refusal(rule: TagRule, tag: str) -> str | None:
    """Why a pushed tag is ignored under ``rule`` as a whole, or None if it may proceed."""
    for pattern in rule.exclude:
        if fnmatchcase(tag, pattern):
            return f"tag {tag!r} is excluded by the policy's pattern {pattern!r}"
    if rule.include and not any(fnmatchcase(tag, p) for p in rule.include):
        return f"tag {tag!r} matches none of the policy's include patterns"
    if rule.semver is None:
        return None
    version = parse_version(tag)
    if version is None:
        return (
            f"tag {tag!r} is not a semantic version; the policy updates on {rule.semver} versions"
        )
    if version.is_prerelease and not rule.takes_prereleases:
        return f"tag {tag!r} is a pre-release; the policy does not take pre-releases"
    return None


def update_refusal(rule: TagRule, old_tag: str | None, new_tag: str) -> str | None:
    """Why a device running ``old_tag`` does not take ``new_tag``, or None if it does."""
    if rule.semver is None:
        return None
    new = parse_version(new_tag)
    old = parse_version(old_tag) if old_tag else None
    if new is None:
        return f"{new_tag!r} is not a semantic version"
    if old is None:
        return f"runs {old_tag!r}, which is not a semantic version to compare with"
    if new <= old:
        return f"runs {old_tag}, which is not older than {new_tag}"
    if rule.semver == "minor" and new.major != old.major:
        return f"{old_tag} → {new_tag} is a major update; the policy allows minor"
    if rule.semver == "patch" and (new.major, new.minor) != (old.major, old.minor):
        return f"{old_tag} → {new_tag} is beyond a patch update; the policy allows patch"
    return None
