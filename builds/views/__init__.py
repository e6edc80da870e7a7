"""Harbor's web UI: server-rendered pages, with htmx polling the live regions.

One module per part of the site; this package re-exports the views ``builds.urls`` routes
to. Every page but the health check needs signing in.
"""

from builds.views.approvals import approval_decide, approval_list
from builds.views.builds import (
    BUILDS_PER_PAGE,
    build_detail,
    build_list,
    buildable_detail,
    log_download,
    unit_result_detail,
)
from builds.views.commands import build_command, step_rerun
from builds.views.health import healthz
from builds.views.logs import log_detail
from builds.views.plans import (
    RECENT_BUILDS,
    plan_detail,
    plan_list,
    plan_run,
    plan_upload,
    plan_version,
    test_detail,
)
from builds.views.tokens import token_list, token_revoke
from builds.views.waiting import waiting_list

__all__ = [
    "approval_decide",
    "approval_list",
    "BUILDS_PER_PAGE",
    "RECENT_BUILDS",
    "build_command",
    "build_detail",
    "build_list",
    "buildable_detail",
    "healthz",
    "log_detail",
    "log_download",
    "step_rerun",
    "plan_detail",
    "plan_list",
    "plan_run",
    "plan_upload",
    "plan_version",
    "test_detail",
    "token_list",
    "token_revoke",
    "unit_result_detail",
    "waiting_list",
]
