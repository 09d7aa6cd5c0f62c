"""The database boundary: errors name the database, never its password."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.database import connect, describe
from collector.settings import StorageSettings
from kernel.errors import DatabaseError


@pytest.mark.parametrize(
    ("conninfo", "name"),
    [
        ("postgresql://lw:s3cret@db.example:5433/sla", "postgresql://lw@db.example:5433/sla"),
        ("host=db.example user=lw password=s3cret dbname=sla", "postgresql://lw@db.example/sla"),
        ("postgresql://lw@/sla?host=/run/pg", "postgresql://lw@/sla?host=/run/pg"),
    ],
)
def test_describe_leaves_out_the_password(conninfo: str, name: str) -> None:
    assert describe(conninfo) == name


async def test_unreachable_database_is_a_database_error_naming_it(tmp_path: Path) -> None:
    url = f"postgresql://lw:s3cret@/sla?host={tmp_path}"
    with pytest.raises(DatabaseError) as caught:
        await connect(StorageSettings(url=url, data_dir=tmp_path), open_timeout_s=2)
    message = str(caught.value)
    assert f"postgresql://lw@/sla?host={tmp_path}" in message
    assert "No such file or directory" in message
    assert "s3cret" not in message
