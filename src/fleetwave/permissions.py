"""The permission matrix: who may call each operation of the API. One table, read by the
``authorize`` dependency for every request and by the test that walks the OpenAPI document
(``tests/integration/test_permission_matrix.py``): an operation missing here is refused with
a 500-free 403 at run time and fails that test, so no endpoint ships without a rule.

An operation is keyed by its method and its path template, as FastAPI routes it. Its rule is a
role (the least one that may call it: a higher role may too), or one of the credentials that
are not a user's: a device's own key, a registry's verification, or none at all.
"""

from __future__ import annotations

from enum import StrEnum

from fleetwave.domain.roles import Role


class Credential(StrEnum):
    """Operations not called by a user: checked by their own routes, never by role."""

    public = "public"  # health probes
    device = "device"  # the device's own key (X-Device-API-Key), or a provisioning key
    registry = "registry"  # the provider's verification (signature, token or secret path)


class Owner(StrEnum):
    """Operations on a user's own things: that user may (whatever its role), and admins may."""

    user_or_admin = "user_or_admin"  # the path's {username}


Rule = Role | Credential | Owner

viewer, operator, admin = Role.viewer, Role.operator, Role.admin

PERMISSIONS: dict[tuple[str, str], Rule] = {
    # operations
    ("GET", "/healthz"): Credential.public,
    ("GET", "/readyz"): Credential.public,
    ("GET", "/metrics"): viewer,
    # the device protocol
    ("GET", "/api/v1/device/{uuid}/state"): Credential.device,
    ("PATCH", "/api/v1/device/state"): Credential.device,
    ("POST", "/api/v1/device/{uuid}/logs"): Credential.device,
    ("POST", "/api/v1/device/{uuid}/health"): Credential.device,
    ("POST", "/api/v1/device/register"): Credential.device,
    ("POST", "/api/v1/device/{uuid}/key-exchange"): Credential.device,
    # registries
    ("POST", "/api/v1/webhooks/{endpoint}"): Credential.registry,
    ("POST", "/api/v1/webhooks/{endpoint}/{secret}"): Credential.registry,
    ("GET", "/api/v1/webhooks/deliveries"): viewer,
    # polled registries (issue 17): they carry credentials, so admins only
    ("GET", "/api/v1/registries"): admin,
    ("POST", "/api/v1/registries"): admin,
    ("GET", "/api/v1/registries/{registry_id}"): admin,
    ("PATCH", "/api/v1/registries/{registry_id}"): admin,
    ("DELETE", "/api/v1/registries/{registry_id}"): admin,
    # devices: operators steer their target states; adding, removing and keys are admin work
    ("GET", "/api/v1/devices"): viewer,
    ("GET", "/api/v1/devices/{uuid}"): viewer,
    ("GET", "/api/v1/devices/{uuid}/target-state"): viewer,
    ("GET", "/api/v1/devices/{uuid}/current-state"): viewer,
    ("GET", "/api/v1/devices/{uuid}/logs"): viewer,
    ("GET", "/api/v1/devices/{uuid}/rollouts"): viewer,
    ("PUT", "/api/v1/devices/{uuid}/target-state"): operator,
    ("POST", "/api/v1/devices"): admin,
    ("PATCH", "/api/v1/devices/{uuid}"): admin,  # its name, fleet and tags: what policies match
    ("DELETE", "/api/v1/devices/{uuid}"): admin,
    ("POST", "/api/v1/devices/{uuid}/rotate-key"): admin,
    # provisioning keys
    ("GET", "/api/v1/provisioning-keys"): viewer,
    ("POST", "/api/v1/provisioning-keys"): admin,
    ("DELETE", "/api/v1/provisioning-keys/{key_id}"): admin,
    # policies
    ("GET", "/api/v1/image-policies"): viewer,
    ("GET", "/api/v1/image-policies/{policy_id}"): viewer,
    ("POST", "/api/v1/image-policies"): admin,
    ("PUT", "/api/v1/image-policies/{policy_id}"): admin,
    ("DELETE", "/api/v1/image-policies/{policy_id}"): admin,
    # deployment rings: as policies (they decide a rollout's batches)
    ("GET", "/api/v1/rings"): viewer,
    ("GET", "/api/v1/rings/{name}"): viewer,
    ("POST", "/api/v1/rings"): admin,
    ("PUT", "/api/v1/rings/{name}"): admin,
    ("DELETE", "/api/v1/rings/{name}"): admin,
    # rollouts: watching is for everyone, steering for operators
    ("GET", "/api/v1/rollouts"): viewer,
    ("GET", "/api/v1/rollouts/active"): viewer,
    ("GET", "/api/v1/rollouts/{rollout_id}"): viewer,
    ("GET", "/api/v1/rollouts/{rollout_id}/devices"): viewer,
    ("GET", "/api/v1/rollouts/{rollout_id}/events"): viewer,
    ("GET", "/api/v1/events"): viewer,
    ("GET", "/api/v1/events/stream"): viewer,
    ("POST", "/api/v1/images/trigger-update"): operator,
    ("POST", "/api/v1/rollouts/preview"): operator,  # what a trigger would do, writing nothing
    ("POST", "/api/v1/rollouts/{rollout_id}/{control}"): operator,
    ("POST", "/api/v1/rollouts/{rollout_id}/devices/{uuid}/rollback"): operator,
    ("POST", "/api/v1/rollouts/{rollout_id}/devices/{uuid}/retry"): operator,
    # users, their tokens, and the audit log
    ("GET", "/api/v1/me"): viewer,
    ("GET", "/api/v1/users"): admin,
    ("POST", "/api/v1/users"): admin,
    ("GET", "/api/v1/users/{username}"): admin,
    ("PATCH", "/api/v1/users/{username}"): admin,
    ("DELETE", "/api/v1/users/{username}"): admin,
    ("GET", "/api/v1/users/{username}/tokens"): Owner.user_or_admin,
    ("POST", "/api/v1/users/{username}/tokens"): Owner.user_or_admin,
    ("DELETE", "/api/v1/users/{username}/tokens/{token_id}"): Owner.user_or_admin,
    ("GET", "/api/v1/audit"): admin,
}


def rule_for(method: str, path: str) -> Rule | None:
    """The rule of an operation, or None when the table has none (refused: see above)."""
    return PERMISSIONS.get((method.upper(), path))
