"""The Linkwatch portal: server-rendered pages of link status, per role.

Build it with `create_app`, passing settings, accounts, customers, links and a source
of link states; the caller owns the database and runs the app.
"""

from portal.app import create_app
from portal.settings import (
    CustomerLike,
    LinkLike,
    PortalConfigLike,
    PortalSettings,
    StateSource,
    UserLike,
)

__all__ = [
    "CustomerLike",
    "LinkLike",
    "PortalConfigLike",
    "PortalSettings",
    "StateSource",
    "UserLike",
    "create_app",
]
