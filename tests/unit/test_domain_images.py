"""Image references as Docker reads them, the globs policies use, and moving a name's version."""

from __future__ import annotations

import pytest

from fleetwave.domain.errors import InvalidInput, Problem
from fleetwave.domain.images import (
    ImagePattern,
    ImageRef,
    engine_reference,
    parse_image,
    parse_pattern,
    same_image,
    try_parse_image,
    with_version,
)

DIGEST = "sha256:" + "0123456789abcdef" * 4
OTHER_DIGEST = "sha256:" + "fedcba9876543210" * 4


def problems_of_image(text: str, **kwargs: str) -> list[Problem]:
    with pytest.raises(InvalidInput) as caught:
        parse_image(text, **kwargs)
    return caught.value.problems


def problems_of_pattern(text: str, **kwargs: str) -> list[Problem]:
    with pytest.raises(InvalidInput) as caught:
        parse_pattern(text, **kwargs)
    return caught.value.problems


# --- parse_image: the reference grammar -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("nginx", ImageRef("docker.io", "library/nginx"), id="official image"),
        pytest.param(
            "nginx:alpine", ImageRef("docker.io", "library/nginx", "alpine"), id="with a tag"
        ),
        pytest.param(
            "iotistic/myapp:v1.2.3",
            ImageRef("docker.io", "iotistic/myapp", "v1.2.3"),
            id="namespace/repository",
        ),
        pytest.param(
            "myregistry/app",
            ImageRef("docker.io", "myregistry/app"),
            id="first part without dot or port is a Hub namespace",
        ),
        pytest.param(
            "registry.local:5000/team/app:v1",
            ImageRef("registry.local:5000", "team/app", "v1"),
            id="host with port and a tag",
        ),
        pytest.param(
            "registry.local:5000/team/app",
            ImageRef("registry.local:5000", "team/app"),
            id="host with port, no tag",
        ),
        pytest.param("localhost/app", ImageRef("localhost", "app"), id="localhost"),
        pytest.param(
            "localhost:5000/app:dev", ImageRef("localhost:5000", "app", "dev"), id="localhost:port"
        ),
        pytest.param(
            "[::1]:5000/app:v1", ImageRef("[::1]:5000", "app", "v1"), id="IPv6 host with port"
        ),
        pytest.param(
            "[fe80::1]/team/app", ImageRef("[fe80::1]", "team/app"), id="IPv6 host without port"
        ),
        pytest.param(
            "ghcr.io/acme/sub/app:v2.0.0",
            ImageRef("ghcr.io", "acme/sub/app", "v2.0.0"),
            id="several path components",
        ),
        pytest.param(
            f"app:v1@{DIGEST}",
            ImageRef("docker.io", "library/app", "v1", DIGEST),
            id="tag and digest",
        ),
        pytest.param(
            f"app@{DIGEST}", ImageRef("docker.io", "library/app", None, DIGEST), id="digest only"
        ),
        pytest.param(
            f"registry.local:5000/app@{DIGEST}",
            ImageRef("registry.local:5000", "app", None, DIGEST),
            id="host:port and digest only",
        ),
        pytest.param(
            "Registry.Local:5000/app", ImageRef("registry.local:5000", "app"), id="host lowercased"
        ),
        pytest.param(
            "a-b__c/d.e---f_g:T_ag-1.0",
            ImageRef("docker.io", "a-b__c/d.e---f_g", "T_ag-1.0"),
            id="every separator, tag with uppercase",
        ),
        pytest.param(
            "  nginx:alpine\n",
            ImageRef("docker.io", "library/nginx", "alpine"),
            id="surrounding whitespace stripped",
        ),
        pytest.param(
            "app:" + "t" * 128, ImageRef("docker.io", "library/app", "t" * 128), id="128-char tag"
        ),
    ],
)
def test_parse_image_reads_each_part_of_a_reference(text: str, expected: ImageRef) -> None:
    assert parse_image(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("nginx:alpine", id="short"),
        pytest.param("library/nginx:alpine", id="library/"),
        pytest.param("docker.io/nginx:alpine", id="docker.io, no library/"),
        pytest.param("docker.io/library/nginx:alpine", id="docker.io"),
        pytest.param("index.docker.io/library/nginx:alpine", id="index.docker.io"),
        pytest.param("registry-1.docker.io/library/nginx:alpine", id="registry-1.docker.io"),
        pytest.param("registry.hub.docker.com/library/nginx:alpine", id="registry.hub"),
        pytest.param("DOCKER.IO/library/nginx:alpine", id="uppercase hub host"),
    ],
)
def test_every_spelling_of_a_docker_hub_image_is_the_same_image(text: str) -> None:
    image = parse_image(text)

    assert image == ImageRef("docker.io", "library/nginx", "alpine")
    assert image.repository == "docker.io/library/nginx"
    assert image.familiar == "nginx"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("iotistic/myapp", id="short"),
        pytest.param("docker.io/iotistic/myapp", id="docker.io"),
        pytest.param("index.docker.io/iotistic/myapp", id="index.docker.io"),
        pytest.param("registry-1.docker.io/iotistic/myapp", id="registry-1.docker.io"),
    ],
)
def test_a_hub_namespace_image_is_one_repository_whatever_the_spelling(text: str) -> None:
    image = parse_image(text)

    assert image.repository == "docker.io/iotistic/myapp"
    assert image.familiar == "iotistic/myapp"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param("", "not an image reference", id="empty"),
        pytest.param("   ", "not an image reference", id="blank"),
        pytest.param("my app:v1", "not an image reference", id="space in the name"),
        pytest.param("nginx :alpine", "not an image reference", id="space before the tag"),
        pytest.param("app:v\t1", "not an image reference", id="tab in the tag"),
        pytest.param("Nginx", "lowercase", id="uppercase repository"),
        pytest.param("iotistic/MyApp:v1", "lowercase", id="uppercase in a namespace path"),
        pytest.param("app//x", "lowercase", id="empty path component"),
        pytest.param("/app", "lowercase", id="leading slash"),
        pytest.param("app/", "lowercase", id="trailing slash"),
        pytest.param("-app", "lowercase", id="leading separator"),
        pytest.param("app--", "lowercase", id="trailing separator"),
        pytest.param("a___b", "lowercase", id="three underscores"),
        pytest.param("registry.local:5000/", "lowercase", id="host without repository"),
        pytest.param("registry.local:port/app", "registry host", id="non-numeric port"),
        pytest.param("reg_istry.local/app", "registry host", id="underscore in host"),
        pytest.param("app:", "tag", id="empty tag"),
        pytest.param("app:-v1", "tag", id="tag starting with a dash"),
        pytest.param("app:.v1", "tag", id="tag starting with a dot"),
        pytest.param("app:v1!", "tag", id="tag with a bang"),
        pytest.param("app:" + "t" * 129, "tag", id="129-char tag"),
        pytest.param("app:v1@sha256:abc123", "digest", id="digest too short"),
        pytest.param("app@sha256:" + "g" * 64, "digest", id="digest not hex"),
        pytest.param("app@" + "0123456789abcdef" * 4, "digest", id="digest without algorithm"),
        pytest.param("app@SHA256:" + "0123456789abcdef" * 4, "digest", id="uppercase algorithm"),
        pytest.param("app:v1@", "digest", id="empty digest after @"),
        pytest.param("app@", "digest", id="digest-only ref with nothing after @"),
    ],
)
def test_an_invalid_reference_is_refused_naming_the_field(text: str, fragment: str) -> None:
    problems = problems_of_image(text, field="webhook.image")

    assert [p.field for p in problems] == ["webhook.image"]
    assert fragment in problems[0].message


def test_the_default_field_of_a_bad_reference_is_image() -> None:
    assert [p.field for p in problems_of_image("Nginx")] == ["image"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("nginx:alpine", ImageRef("docker.io", "library/nginx", "alpine"), id="valid"),
        pytest.param("Nginx:alpine", None, id="invalid"),
        pytest.param("", None, id="empty"),
    ],
)
def test_try_parse_image_returns_none_instead_of_raising(
    text: str, expected: ImageRef | None
) -> None:
    assert try_parse_image(text) == expected


# --- ImageRef: names and references ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "repository", "familiar", "short", "full"),
    [
        pytest.param(
            "nginx:alpine",
            "docker.io/library/nginx",
            "nginx",
            "nginx:alpine",
            "docker.io/library/nginx:alpine",
            id="official image",
        ),
        pytest.param(
            "index.docker.io/library/nginx",
            "docker.io/library/nginx",
            "nginx",
            "nginx",
            "docker.io/library/nginx",
            id="long spelling, no tag",
        ),
        pytest.param(
            "docker.io/iotistic/myapp:v1",
            "docker.io/iotistic/myapp",
            "iotistic/myapp",
            "iotistic/myapp:v1",
            "docker.io/iotistic/myapp:v1",
            id="hub namespace",
        ),
        pytest.param(
            f"ghcr.io/acme/app:v2@{DIGEST}",
            "ghcr.io/acme/app",
            "ghcr.io/acme/app",
            f"ghcr.io/acme/app:v2@{DIGEST}",
            f"ghcr.io/acme/app:v2@{DIGEST}",
            id="other registry, tag and digest",
        ),
        pytest.param(
            "registry.local:5000/team/app:v1",
            "registry.local:5000/team/app",
            "registry.local:5000/team/app",
            "registry.local:5000/team/app:v1",
            "registry.local:5000/team/app:v1",
            id="host with port",
        ),
        pytest.param(
            f"app@{DIGEST}",
            "docker.io/library/app",
            "app",
            f"app@{DIGEST}",
            f"docker.io/library/app@{DIGEST}",
            id="digest only",
        ),
        pytest.param(
            "localhost/library/app:v1",
            "localhost/library/app",
            "localhost/library/app",
            "localhost/library/app:v1",
            "localhost/library/app:v1",
            id="library/ kept off Docker Hub",
        ),
    ],
)
def test_image_ref_names_and_references(
    text: str, repository: str, familiar: str, short: str, full: str
) -> None:
    image = parse_image(text)

    assert image.repository == repository
    assert image.familiar == familiar
    assert image.reference() == short
    assert str(image) == short
    assert image.reference(familiar=False) == full


@pytest.mark.parametrize(
    "text",
    [
        "nginx",
        "nginx:alpine",
        "iotistic/myapp:v1.2.3",
        "registry.local:5000/team/app:v1",
        "[::1]:5000/app:v1",
        f"app:v1@{DIGEST}",
        f"ghcr.io/acme/app@{DIGEST}",
    ],
)
def test_a_reference_reads_back_as_the_same_image(text: str) -> None:
    image = parse_image(text)

    assert parse_image(image.reference()) == image
    assert parse_image(image.reference(familiar=False)) == image


@pytest.mark.parametrize(
    ("text", "tag", "digest", "expected"),
    [
        pytest.param("nginx:1.25", "1.26", None, "nginx:1.26", id="replaces the tag"),
        pytest.param("nginx", "1.26", None, "nginx:1.26", id="adds a tag"),
        pytest.param(f"nginx:1.25@{DIGEST}", "1.26", None, "nginx:1.26", id="drops the digest"),
        pytest.param("nginx:1.25", "1.26", DIGEST, f"nginx:1.26@{DIGEST}", id="adds a digest"),
        pytest.param(
            f"nginx:1.25@{OTHER_DIGEST}",
            "1.26",
            DIGEST,
            f"nginx:1.26@{DIGEST}",
            id="replaces the digest",
        ),
        pytest.param(f"app@{DIGEST}", "v1", None, "app:v1", id="digest-only gets a tag"),
        pytest.param("nginx:1.25", None, DIGEST, f"nginx@{DIGEST}", id="to digest only"),
        pytest.param(
            "registry.local:5000/app:v1",
            "v2",
            None,
            "registry.local:5000/app:v2",
            id="host with port",
        ),
    ],
)
def test_image_ref_with_version_keeps_the_name_and_replaces_the_version(
    text: str, tag: str | None, digest: str | None, expected: str
) -> None:
    image = parse_image(text)
    moved = image.with_version(tag, digest)

    assert moved.reference() == expected
    assert (moved.registry, moved.path) == (image.registry, image.path)
    assert (moved.tag, moved.digest) == (tag, digest)


# --- parse_pattern and matching -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "repository", "tag"),
    [
        pytest.param("iotistic/myapp:*", "docker.io/iotistic/myapp", "*", id="any tag"),
        pytest.param("ghcr.io/acme/*:v2.*", "ghcr.io/acme/*", "v2.*", id="globs on both"),
        pytest.param("nginx", "docker.io/library/nginx", "*", id="official, no tag"),
        pytest.param(
            "index.docker.io/library/nginx:1.*",
            "docker.io/library/nginx",
            "1.*",
            id="hub alias normalised",
        ),
        pytest.param("iotistic/*", "docker.io/iotistic/*", "*", id="hub namespace glob"),
        pytest.param("*", "*", "*", id="star alone"),
        pytest.param("*:v1", "*", "v1", id="any repository, one tag"),
        pytest.param(
            "registry.local:5000/team/*:v?",
            "registry.local:5000/team/*",
            "v?",
            id="host with port",
        ),
        pytest.param(
            "localhost/app:[0-9]*", "localhost/app", "[0-9]*", id="character class in the tag"
        ),
    ],
)
def test_parse_pattern_expands_the_repository_and_defaults_the_tag(
    text: str, repository: str, tag: str
) -> None:
    assert parse_pattern(text) == ImagePattern(text=text, repository=repository, tag=tag)


@pytest.mark.parametrize(
    ("pattern", "image", "expected"),
    [
        pytest.param("iotistic/myapp:*", "iotistic/myapp:v1", True, id="any tag: short"),
        pytest.param("iotistic/myapp:*", "docker.io/iotistic/myapp:v1", True, id="docker.io"),
        pytest.param(
            "iotistic/myapp:*", "index.docker.io/iotistic/myapp:v9", True, id="index.docker.io"
        ),
        pytest.param("iotistic/myapp:*", "iotistic/other:v1", False, id="other repository"),
        pytest.param("iotistic/myapp:*", "ghcr.io/iotistic/myapp:v1", False, id="other host"),
        pytest.param(
            "iotistic/myapp:*", "iotistic/myapp-extra:v1", False, id="longer name, same prefix"
        ),
        pytest.param(
            "ghcr.io/acme/*:v2.*", "ghcr.io/acme/app:v2.1.0", True, id="host glob: v2.1.0"
        ),
        pytest.param("ghcr.io/acme/*:v2.*", "ghcr.io/acme/app:v3.0.0", False, id="v3 refused"),
        pytest.param("ghcr.io/acme/*:v2.*", "ghcr.io/acme/app:v2", False, id="v2 has no dot"),
        pytest.param("ghcr.io/acme/*:v2.*", "ghcr.io/other/app:v2.1", False, id="other namespace"),
        pytest.param("ghcr.io/acme/*:v2.*", "acme/app:v2.1", False, id="hub is not ghcr"),
        pytest.param("nginx", "nginx:alpine", True, id="no tag: alpine"),
        pytest.param("nginx", "docker.io/library/nginx:1.25", True, id="no tag: long spelling"),
        pytest.param("nginx", "nginxinc/nginx:1", False, id="no tag: other namespace"),
        pytest.param("nginx", "ghcr.io/library/nginx:1", False, id="no tag: other registry"),
        pytest.param("iotistic/*", "iotistic/myapp:v9", True, id="namespace glob"),
        pytest.param("iotistic/*", "nginx:1", False, id="namespace glob: library"),
        pytest.param("*", "ghcr.io/acme/app:v1", True, id="star: other registry"),
        pytest.param("*", "nginx", True, id="star: untagged"),
        pytest.param("*", f"app@{DIGEST}", True, id="star: digest only"),
        pytest.param("*", "registry.local:5000/a/b:c", True, id="star: host with port"),
        pytest.param("*:v1", "nginx:v1", True, id="any repo, tag v1"),
        pytest.param("*:v1", "nginx:v2", False, id="any repo, tag v2"),
        pytest.param("iotistic/myapp:v1.?", "iotistic/myapp:v1.2", True, id="? one char"),
        pytest.param("iotistic/myapp:v1.?", "iotistic/myapp:v1.10", False, id="? not two"),
        pytest.param("app:v1", "app:V1", False, id="tags are case-sensitive"),
        pytest.param(
            "localhost:5000/app:[0-9]*", "localhost:5000/app:1.0", True, id="class: digit"
        ),
        pytest.param(
            "localhost:5000/app:[0-9]*", "localhost:5000/app:latest", False, id="class: letter"
        ),
    ],
)
def test_pattern_matches(pattern: str, image: str, expected: bool) -> None:
    assert parse_pattern(pattern).matches(parse_image(image)) is expected


@pytest.mark.parametrize(
    ("specific", "general"),
    [
        pytest.param("iotistic/myapp:v1.*", "iotistic/myapp:*", id="tag prefix over any tag"),
        pytest.param("iotistic/myapp:*", "iotistic/*", id="repository over namespace"),
        pytest.param("iotistic/*", "*", id="namespace over everything"),
        pytest.param("ghcr.io/acme/app:v2.*", "ghcr.io/acme/*:v2.*", id="named over glob"),
        pytest.param("iotistic/myapp:v1.2.3", "iotistic/myapp:v1.2.*", id="exact over glob"),
    ],
)
def test_a_pattern_that_spells_out_more_is_more_specific(specific: str, general: str) -> None:
    assert parse_pattern(specific).specificity > parse_pattern(general).specificity


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        pytest.param("*", 1, id="star: only the colon"),
        pytest.param("nginx", len("docker.io/library/nginx:"), id="nginx"),
        pytest.param("iotistic/myapp:v1", len("docker.io/iotistic/myapp:v1"), id="exact"),
        pytest.param("ghcr.io/acme/*:v2.*", len("ghcr.io/acme/:v2."), id="globs not counted"),
        pytest.param("app:v[12]", len("docker.io/library/app:v12"), id="brackets not counted"),
    ],
)
def test_specificity_counts_literal_characters(pattern: str, expected: int) -> None:
    assert parse_pattern(pattern).specificity == expected


@pytest.mark.parametrize(
    ("one", "other"),
    [
        pytest.param("nginx", "docker.io/library/nginx:*", id="nginx"),
        pytest.param("iotistic/myapp", "index.docker.io/iotistic/myapp:*", id="namespace"),
    ],
)
def test_spellings_of_one_pattern_are_equally_specific(one: str, other: str) -> None:
    assert parse_pattern(one).specificity == parse_pattern(other).specificity


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param("", "not an image pattern", id="empty"),
        pytest.param("   ", "not an image pattern", id="blank"),
        pytest.param("iotistic/my app", "not an image pattern", id="space in the name"),
        pytest.param("app:v1 beta", "not an image pattern", id="space in the tag"),
        pytest.param("a" * 256, "not an image pattern", id="longer than 255"),
        pytest.param(f"app@{DIGEST}", "digests", id="with a digest"),
        pytest.param(f"app:v1@{DIGEST}", "digests", id="with a tag and a digest"),
        pytest.param("app:v[12", "unclosed [", id="unclosed [ in the tag"),
        pytest.param("app[:v1", "unclosed [", id="unclosed [ in the name"),
        pytest.param("iotistic//myapp", "empty repository component", id="double slash"),
        pytest.param("/app", "empty repository component", id="leading slash"),
        pytest.param("app/", "empty repository component", id="trailing slash"),
        pytest.param("app/:v1", "empty repository component", id="trailing slash before tag"),
        pytest.param("ghcr.io//app", "empty repository component", id="host then empty"),
        pytest.param("ghcr.io/", "empty repository component", id="host alone"),
    ],
)
def test_an_invalid_pattern_is_refused_naming_the_field(text: str, fragment: str) -> None:
    problems = problems_of_pattern(text, field="policy.image_pattern")

    assert [p.field for p in problems] == ["policy.image_pattern"]
    assert fragment in problems[0].message


def test_the_default_field_of_a_bad_pattern_is_image_pattern() -> None:
    assert [p.field for p in problems_of_pattern("a b")] == ["image_pattern"]


# --- with_version: the device's own spelling, another version -------------------------------


@pytest.mark.parametrize(
    ("image", "tag", "digest", "expected"),
    [
        pytest.param("iotistic/myapp:v1", "v2", None, "iotistic/myapp:v2", id="short"),
        pytest.param(
            "docker.io/iotistic/myapp:v1",
            "v2",
            None,
            "docker.io/iotistic/myapp:v2",
            id="keeps docker.io",
        ),
        pytest.param(
            "index.docker.io/library/nginx:1.25",
            "1.26",
            None,
            "index.docker.io/library/nginx:1.26",
            id="keeps index.docker.io/library",
        ),
        pytest.param("nginx", "1.26", None, "nginx:1.26", id="untagged gets a tag"),
        pytest.param(
            "registry.local:5000/team/app:v1",
            "v2",
            None,
            "registry.local:5000/team/app:v2",
            id="host:port with tag",
        ),
        pytest.param(
            "registry.local:5000/team/app",
            "v2",
            None,
            "registry.local:5000/team/app:v2",
            id="host:port, port is not a tag",
        ),
        pytest.param(
            "localhost:5000/app", "v2", None, "localhost:5000/app:v2", id="localhost:port"
        ),
        pytest.param("[::1]:5000/app:v1", "v2", None, "[::1]:5000/app:v2", id="IPv6 host"),
        pytest.param(
            f"iotistic/myapp:v1@{OTHER_DIGEST}",
            "v2",
            None,
            "iotistic/myapp:v2",
            id="old digest dropped",
        ),
        pytest.param(
            "iotistic/myapp:v1", "v2", DIGEST, f"iotistic/myapp:v2@{DIGEST}", id="digest added"
        ),
        pytest.param(
            f"iotistic/myapp:v1@{OTHER_DIGEST}",
            "v2",
            DIGEST,
            f"iotistic/myapp:v2@{DIGEST}",
            id="digest replaced",
        ),
        pytest.param(
            f"iotistic/myapp@{OTHER_DIGEST}",
            "v2",
            DIGEST,
            f"iotistic/myapp:v2@{DIGEST}",
            id="digest-only gets tag and digest",
        ),
        pytest.param(
            f"registry.local:5000/app@{OTHER_DIGEST}",
            "v2",
            None,
            "registry.local:5000/app:v2",
            id="host:port, digest only",
        ),
        pytest.param("iotistic/myapp:v2", "v2", None, "iotistic/myapp:v2", id="same version"),
    ],
)
def test_with_version_keeps_the_devices_spelling_of_the_name(
    image: str, tag: str, digest: str | None, expected: str
) -> None:
    moved = with_version(image, tag, digest)

    assert moved == expected
    assert parse_image(moved).repository == parse_image(image).repository
    assert (parse_image(moved).tag, parse_image(moved).digest) == (tag, digest)


# --- same_image: a reported image against the one wanted --------------------------------------

REPO = "registry.example.com:5000/acme/app"
PINNED = f"{REPO}:v3@{DIGEST}"


@pytest.mark.parametrize(
    ("reported", "wanted", "expected"),
    [
        pytest.param(PINNED, PINNED, True, id="identical"),
        pytest.param(f"{REPO}@{DIGEST}", PINNED, True, id="tag dropped by the engine (Podman)"),
        pytest.param(PINNED, f"{REPO}@{DIGEST}", True, id="wanted without the tag"),
        pytest.param(f"{REPO}:v2@{DIGEST}", PINNED, True, id="same digest, another tag"),
        pytest.param(f"{REPO}:v3", PINNED, True, id="reported without the pinned digest"),
        pytest.param(PINNED, f"{REPO}:v3", True, id="wanted without a digest"),
        pytest.param(f"{REPO}:v3@{OTHER_DIGEST}", PINNED, False, id="another digest"),
        pytest.param(f"{REPO}@{OTHER_DIGEST}", PINNED, False, id="tagless, another digest"),
        pytest.param(f"{REPO}@{DIGEST}", f"{REPO}:v3", False, id="tagless against a tag"),
        pytest.param(f"{REPO}:v3", f"{REPO}@{DIGEST}", False, id="a tag against a tagless pin"),
        pytest.param(f"{REPO}:v2", f"{REPO}:v3", False, id="another tag"),
        pytest.param(f"{REPO}-fork@{DIGEST}", PINNED, False, id="another repository, same digest"),
        pytest.param("docker.io/library/nginx:1.25", "nginx:1.25", True, id="hub long form"),
        pytest.param("index.docker.io/library/nginx:1.25", "nginx:1.25", True, id="hub alias"),
        pytest.param(f"docker.io/library/nginx@{DIGEST}", f"nginx:1.25@{DIGEST}", True, id="hub"),
        pytest.param("nginx:1.25", "nginx:1.26", False, id="hub, another tag"),
        pytest.param("nginx", "nginx:latest", True, id="no tag is latest"),
        pytest.param("nginx:latest", "nginx", True, id="latest is no tag"),
        pytest.param(None, PINNED, False, id="nothing reported"),
        pytest.param("Not An Image", "Not An Image", True, id="unparsable, same text"),
        pytest.param("Not An Image", PINNED, False, id="unparsable, other text"),
    ],
)
def test_same_image(reported: str | None, wanted: str, expected: bool) -> None:
    assert same_image(reported, wanted) is expected


# --- engine_reference: what is served, so that engines report it back unchanged ---------------


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        pytest.param(PINNED, f"{REPO}@{DIGEST}", id="host:port, tag dropped"),
        pytest.param(f"{REPO}@{DIGEST}", f"{REPO}@{DIGEST}", id="already tagless"),
        pytest.param(f"{REPO}:v3", f"{REPO}:v3", id="not pinned: unchanged"),
        pytest.param(REPO, REPO, id="host:port, no tag: unchanged"),
        pytest.param(f"iotistic/myapp:v3@{DIGEST}", f"iotistic/myapp@{DIGEST}", id="hub short"),
        pytest.param(f"[::1]:5000/app:v3@{DIGEST}", f"[::1]:5000/app@{DIGEST}", id="IPv6 host"),
        pytest.param(f"[::1]:5000/app@{DIGEST}", f"[::1]:5000/app@{DIGEST}", id="IPv6, no tag"),
        pytest.param("Not An Image", "Not An Image", id="not a reference: unchanged"),
    ],
)
def test_engine_reference_drops_the_tag_of_a_pinned_reference(image: str, expected: str) -> None:
    assert engine_reference(image) == expected
    if "@" in image:
        assert same_image(engine_reference(image), image)
