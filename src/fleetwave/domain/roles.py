"""Who may do what: the three roles, and the principal a request acts as.

A role covers every role below it: an ``admin`` may do what an ``operator`` may, and an
``operator`` what a ``viewer`` may. The principal's ``name`` is what events and the audit log
record as the actor: a username, ``admin-token`` (the break-glass token from the data
directory), ``device:<uuid>`` or ``registry:<provider>``. It always comes from the credential
the request was authenticated with, never from the request's body.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from fleetwave.domain import vocabulary

ADMIN_TOKEN_ACTOR = "admin-token"  # noqa: S105 - a name, not a secret


class Role(StrEnum):
    viewer = "viewer"
    operator = "operator"
    admin = "admin"

    @property
    def rank(self) -> int:
        return ROLES.index(self)

    def covers(self, needed: Role) -> bool:
        """Whether this role may do what ``needed`` may."""
        return self.rank >= needed.rank


ROLES: tuple[Role, ...] = tuple(Role(name) for name in vocabulary.ROLES)


@dataclass(frozen=True)
class Principal:
    """Who a request acts as, and with which role."""

    name: str
    role: Role
    user_id: int | None = None  # None: the admin token
    token_id: int | None = None  # the personal token it used, if any
    session: bool = False  # a dashboard session (its forms need a CSRF token)


def device_actor(uuid: str) -> str:
    return f"device:{uuid}"


def registry_actor(provider: str) -> str:
    return f"registry:{provider}"
