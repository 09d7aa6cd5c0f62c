"""The Linkwatch portal: server-rendered pages and a JSON API, per role.

Build it with `create_app`, passing settings, the database and the validated config; the
caller owns the database and runs the app.
"""

from portal.app import create_app
from portal.settings import PortalSettings

__all__ = ["PortalSettings", "create_app"]
