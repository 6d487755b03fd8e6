"""devices.application_id: the iotistic applicationId, no longer a tag

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

Self-registration kept the agent's ``applicationId`` as a device tag (``applicationId=1``),
where it mixed with the tags operators filter and target by. It is an attribute of the
device: its own column now. Devices that registered themselves have the tag moved into the
column (one UPDATE); tags an admin set by hand on other devices are left alone.

Going down puts the column's values back as tags, then drops it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

MOVE_TO_COLUMN = {
    "postgresql": (
        "UPDATE devices SET application_id = tags->>'applicationId',"
        " tags = tags - 'applicationId'"
        " WHERE provisioning_key_id IS NOT NULL AND tags->>'applicationId' IS NOT NULL"
    ),
    "sqlite": (
        "UPDATE devices SET application_id = CAST(json_extract(tags, '$.applicationId') AS TEXT),"
        " tags = json_remove(tags, '$.applicationId')"
        " WHERE provisioning_key_id IS NOT NULL"
        " AND json_extract(tags, '$.applicationId') IS NOT NULL"
    ),
}
MOVE_TO_TAGS = {
    "postgresql": (
        "UPDATE devices SET tags = tags || jsonb_build_object('applicationId', application_id)"
        " WHERE application_id IS NOT NULL"
    ),
    "sqlite": (
        "UPDATE devices SET tags = json_set(tags, '$.applicationId', application_id)"
        " WHERE application_id IS NOT NULL"
    ),
}


def upgrade() -> None:
    op.add_column("devices", sa.Column("application_id", sa.String(length=255), nullable=True))
    op.execute(MOVE_TO_COLUMN[op.get_bind().dialect.name])


def downgrade() -> None:
    op.execute(MOVE_TO_TAGS[op.get_bind().dialect.name])
    # ALTER TABLE … DROP COLUMN (SQLite ≥ 3.35), as 0005 does: no rebuild of a viewed table
    op.execute("ALTER TABLE devices DROP COLUMN application_id")
