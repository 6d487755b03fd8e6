"""Image references and the glob patterns policies use to pick them.

A reference is parsed the way Docker reads one: an optional registry host (it has a dot or a
port, or is ``localhost``), a repository path, a tag and a digest. Docker Hub's short forms are
expanded, so ``nginx:alpine``, ``docker.io/library/nginx:alpine`` and
``index.docker.io/library/nginx:alpine`` are one image.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase

from fleetwave.domain.errors import InvalidInput
from fleetwave.domain.text_rules import label_problem

DOCKER_HUB = "docker.io"
DOCKER_HUB_ALIASES = {
    "docker.io",
    "index.docker.io",
    "registry-1.docker.io",
    "registry.hub.docker.com",
}
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$")
_SPACE = re.compile(r"\s")
_HOST = re.compile(r"^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:]+\])(?::\d{1,5})?$")
GLOB_CHARACTERS = set("*?[]")


@dataclass(frozen=True)
class ImageRef:
    registry: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        """Registry and path: what identifies the image whatever its version."""
        return f"{self.registry}/{self.path}"

    @property
    def familiar(self) -> str:
        """The short name people write (``nginx``, ``iotistic/myapp``, ``ghcr.io/acme/app``)."""
        if self.registry != DOCKER_HUB:
            return self.repository
        return self.path.removeprefix("library/")

    def with_version(self, tag: str | None, digest: str | None = None) -> ImageRef:
        return replace(self, tag=tag, digest=digest)

    def reference(self, *, familiar: bool = True) -> str:
        """The full reference, ``name[:tag][@digest]``."""
        text = self.familiar if familiar else self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def __str__(self) -> str:
        return self.reference()


def split_reference(text: str) -> tuple[str | None, str, str | None, str | None]:
    """(host, path, tag, digest) without validation; shared by references and patterns."""
    name, _, digest = text.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = None
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first, rest, tag, digest or None
    return None, name, tag, digest or None


def parse_image(text: str, *, field: str = "image") -> ImageRef:
    """Parse a reference; raise :class:`InvalidInput` naming ``field`` if it is not one."""
    text = text.strip()
    if not text or _SPACE.search(text):
        raise InvalidInput.one(field, f"{text!r} is not an image reference")
    if (problem := label_problem(text)) is not None:
        raise InvalidInput.one(field, problem)
    host, path, tag, digest = split_reference(text)
    if "@" in text and digest is None:
        raise InvalidInput.one(field, f"{text!r} has nothing after '@' (expected a digest)")
    registry = _registry(host)
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    if host is not None and not _HOST.fullmatch(host):
        raise InvalidInput.one(field, f"registry host {host!r} is not valid")
    if not path or not all(_COMPONENT.fullmatch(c) for c in path.split("/")):
        raise InvalidInput.one(
            field, f"repository {path!r} must be lowercase letters, digits and separators"
        )
    if tag is not None and not _TAG.fullmatch(tag):
        raise InvalidInput.one(field, f"tag {tag!r} is not valid")
    if digest is not None and not _DIGEST.fullmatch(digest):
        raise InvalidInput.one(field, f"digest {digest!r} is not valid (algorithm:hex)")
    return ImageRef(registry=registry, path=path, tag=tag, digest=digest)


def try_parse_image(text: str) -> ImageRef | None:
    try:
        return parse_image(text)
    except InvalidInput:
        return None


def _registry(host: str | None) -> str:
    if host is None or host.lower() in DOCKER_HUB_ALIASES:
        return DOCKER_HUB
    return host.lower()


@dataclass(frozen=True)
class ImagePattern:
    """A policy's ``image_pattern``: globs over the repository and the tag."""

    text: str
    repository: str
    tag: str

    def matches(self, image: ImageRef) -> bool:
        return self.matches_repository(image.repository) and fnmatchcase(image.tag or "", self.tag)

    def matches_repository(self, repository: str) -> bool:
        """Whether some tag of ``repository`` (``registry/path``) could match."""
        return self.repository == "*" or fnmatchcase(repository, self.repository)

    @property
    def specificity(self) -> int:
        """Literal characters: the more a pattern spells out, the more specific it is."""
        return sum(1 for ch in self.repository + ":" + self.tag if ch not in GLOB_CHARACTERS)


def parse_pattern(text: str, *, field: str = "image_pattern") -> ImagePattern:
    """Parse a glob like ``iotistic/myapp:*`` or ``ghcr.io/acme/*:v2.*``.

    A pattern without a tag matches every tag; ``*`` alone matches every image. Docker Hub's
    short forms are expanded as in references (``iotistic/*`` → ``docker.io/iotistic/*``).
    """
    text = text.strip()
    if not text or any(ch.isspace() for ch in text) or len(text) > 255:
        raise InvalidInput.one(field, f"{text!r} is not an image pattern")
    if (problem := label_problem(text)) is not None:
        raise InvalidInput.one(field, problem)
    if "@" in text:
        raise InvalidInput.one(field, "patterns match names and tags, not digests")
    if text.count("[") != text.count("]"):
        raise InvalidInput.one(field, f"{text!r} has an unclosed [")
    host, path, tag, _ = split_reference(text)
    if not path or path.startswith("/") or path.endswith("/") or "//" in path:
        raise InvalidInput.one(field, f"{text!r} has an empty repository component")
    if path == "*" and host is None:
        return ImagePattern(text=text, repository="*", tag=tag or "*")
    registry = _registry(host)
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    return ImagePattern(text=text, repository=f"{registry}/{path}", tag=tag or "*")


def with_version(image: str, tag: str, digest: str | None = None) -> str:
    """``image`` as the device spelled it, moved to ``tag`` (and pinned to ``digest``)."""
    name = image.partition("@")[0]
    slash, colon = name.rfind("/"), name.rfind(":")
    if colon > slash:
        name = name[:colon]
    return f"{name}:{tag}@{digest}" if digest else f"{name}:{tag}"


def same_version(
    tag: str | None, digest: str | None, other_tag: str | None, other_digest: str | None
) -> bool:
    """Whether two versions of one repository are the same image.

    Two digests decide alone, whatever the tags: engines report a pinned reference with the
    tag dropped (Podman runs ``repo:v3@sha256:…`` as ``repo@sha256:…``). Otherwise the tags
    decide (a missing tag without a digest is ``latest``, as engines read it), and a digest on
    one side only is not held against it: an agent may report the tag without the pin.
    """
    if digest is not None and other_digest is not None:
        return digest == other_digest
    if digest is None and tag is None:
        tag = "latest"
    if other_digest is None and other_tag is None:
        other_tag = "latest"
    return tag is not None and tag == other_tag


def same_image(reported: str | None, wanted: str) -> bool:
    """Whether a reported image is the wanted one: the same repository (Docker Hub's short
    forms expanded) and the same version (:func:`same_version`). Text that is not a reference
    is the same only as the same text."""
    if reported is None:
        return False
    a, b = try_parse_image(reported), try_parse_image(wanted)
    if a is None or b is None:
        return reported == wanted
    return a.repository == b.repository and same_version(a.tag, a.digest, b.tag, b.digest)


def engine_reference(image: str) -> str:
    """``image`` in the form container engines report back unchanged: a pinned reference
    without its tag (``repo:v3@sha256:…`` → ``repo@sha256:…``), the name as it was spelled.

    Docker keeps a container's reference as given; Podman drops the tag of a pinned one, so
    an agent comparing names exactly (the iotistic agent) would see ``repo:v3@sha256:…``
    never arrive. Anything else is returned as it is.
    """
    name, at, digest = image.partition("@")
    if not at:
        return image
    slash, colon = name.rfind("/"), name.rfind(":")
    return f"{name[:colon]}@{digest}" if colon > slash else image
