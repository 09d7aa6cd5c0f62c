"""The Linkwatch portal: server-rendered pages and a JSON API, per role.

Build it with `create_app`, passing settings, the database and the validated config; the
caller owns the database and runs the app, and hands it a reloaded config with
`reload_config`. `secret_key` finds the key the settings carry: configured, or kept in
data_dir.
"""

from portal.app import create_app, reload_config, secret_key
from portal.settings import PortalSettings

__all__ = ["PortalSettings", "create_app", "reload_config", "secret_key"]
