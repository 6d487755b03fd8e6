"""Registry passwords sealed at rest: they open with their key only, and unaltered."""

from __future__ import annotations

import pytest

from fleetwave.registries.sealing import PREFIX, SealBroken, Sealer


def test_a_sealed_password_opens_to_itself_and_does_not_show() -> None:
    sealer = Sealer("fwr_key")
    sealed = sealer.seal("s3cret-pässword")
    assert sealed.startswith(PREFIX) and "s3cret" not in sealed
    assert sealer.open(sealed) == "s3cret-pässword"
    assert sealer.seal("same") != sealer.seal("same")  # a fresh nonce each time


@pytest.mark.parametrize("how", ["other key", "altered", "not sealed"])
def test_a_seal_that_is_not_ours_or_altered_does_not_open(how: str) -> None:
    sealed = Sealer("fwr_key").seal("password")
    if how == "other key":
        opener, text = Sealer("fwr_other"), sealed
    elif how == "altered":
        opener, text = (
            Sealer("fwr_key"),
            sealed[:-3] + ("A" if sealed[-3] != "A" else "B") + sealed[-2:],
        )
    else:
        opener, text = Sealer("fwr_key"), "password"
    with pytest.raises(SealBroken):
        opener.open(text)
