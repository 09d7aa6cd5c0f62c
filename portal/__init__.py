"""The Linkwatch portal: server-rendered pages and a JSON API, per role.

Build it with `create_app`, passing settings, the database and the validated config; the
caller owns the database and runs the app, and hands it a reloaded config with
`reload_config`. `secret_key` finds the key the settings carry: configured, or kept in
data_dir.

Inside, the pages (`portal.pages`, one module per page family) and the JSON API
(`portal.api`, one module per job, and one per subject for its handlers) never import
each other: both read through `portal.reads` and ask `portal.scope` who may see what.
Pages build what they show from the view modules (`board`, `link_views`, `link_charts`,
`credit_views`, `ledger_views`, `maintenance_views`), which write nothing and render no
page.
"""

from portal.app import create_app, reload_config, secret_key
from portal.settings import PortalSettings

__all__ = ["PortalSettings", "create_app", "reload_config", "secret_key"]
