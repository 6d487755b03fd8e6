"""Which server to speak to, and with which admin token.

Flags first, then ``FLEETWAVE_URL`` / ``FLEETWAVE_ADMIN_TOKEN`` (typer reads those into the
flags), then the local settings: the server's host and port, and the token kept in the data
directory. The token file is only read here, never created: an operator CLI that minted a
token the server does not know would only hide the real problem.
"""

from __future__ import annotations

from collections.abc import Callable

from fleetwave.settings import Settings

SettingsLoader = Callable[[], Settings]
UNSPECIFIED_HOSTS = ("", "0.0.0.0", "::")  # noqa: S104 - read, not bound


class MissingToken(Exception):
    """No admin token was given and none is kept locally."""


def server_url(flag: str | None, settings: SettingsLoader) -> str:
    if flag:
        return flag.rstrip("/")
    loaded = settings()
    host = "127.0.0.1" if loaded.host in UNSPECIFIED_HOSTS else loaded.host
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{loaded.port}"


def admin_token(flag: str | None, settings: SettingsLoader) -> str:
    if flag:
        return flag
    loaded = settings()
    if loaded.admin_token is not None:
        return loaded.admin_token.get_secret_value()
    path = loaded.admin_token_path.resolve()
    hint = "pass --token or set FLEETWAVE_ADMIN_TOKEN"
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        raise MissingToken(f"no admin token: {path} does not exist; {hint}") from None
    except OSError as exc:
        raise MissingToken(f"cannot read the admin token in {path} ({exc}); {hint}") from None
    if not token:
        raise MissingToken(f"no admin token: {path} is empty; {hint}")
    return token
