"""Which credential a body needs before it is read, and what a request declares of its body."""

from __future__ import annotations

import pytest

from fleetwave.body_limits import Credential, credential_needed, declared_body


@pytest.mark.parametrize(
    ("path", "needed"),
    [
        ("/api/v1/devices", Credential.ADMIN),
        ("/api/v1/devices/pi-1/target-state", Credential.ADMIN),
        ("/api/v1/image-policies/3", Credential.ADMIN),
        ("/api/v1/images/trigger-update", Credential.ADMIN),
        ("/api/v1/some-route-added-later", Credential.ADMIN),
        ("/api/v1/webhooks/deliveries", Credential.ADMIN),
        ("/api/v1/device/state", Credential.DEVICE),
        ("/api/v1/device/register", Credential.DEVICE),
        ("/api/v1/device/pi-1/health", Credential.DEVICE),
        ("/api/v1/webhooks/harbor", Credential.NONE),
        ("/api/v1/webhooks/dockerhub/the-secret", Credential.NONE),
        ("/api/v1/webhooks/docker-registry", Credential.NONE),
        ("/healthz", Credential.NONE),
        ("/ui/login", Credential.NONE),
        ("/ui/policies", Credential.NONE),  # the dashboard checks its session before the form
    ],
)
def test_each_path_needs_its_credential_before_the_body(path: str, needed: Credential) -> None:
    assert credential_needed(path) is needed


@pytest.mark.parametrize(
    ("headers", "declared"),
    [
        ([], (False, None)),
        ([(b"content-length", b"0")], (False, 0)),
        ([(b"content-length", b"12")], (True, 12)),
        ([(b"transfer-encoding", b"chunked")], (True, None)),
        ([(b"content-length", b"12x")], (True, None)),
        ([(b"host", b"a"), (b"content-length", b"99999999999999999999")], (True, 10**20 - 1)),
    ],
)
def test_a_request_declares_its_body_by_length_or_chunked_encoding(
    headers: list[tuple[bytes, bytes]], declared: tuple[bool, int | None]
) -> None:
    assert declared_body(headers) == declared
