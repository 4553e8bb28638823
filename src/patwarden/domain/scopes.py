"""Azure DevOps PAT scopes: the known list and how they include each other (contract §7.1).

Pure facts shared by config validation, the Azure DevOps client, inventory findings and the
emulator, so all of them agree on what a PAT scope is.
"""

from __future__ import annotations

AZURE_DEVOPS_RESOURCE = "499b84ac-1321-427f-aa17-267ca6975798"  # Entra resource (app) id
AZURE_DEVOPS_DEFAULT_SCOPE = f"{AZURE_DEVOPS_RESOURCE}/.default"
# Delegated scopes the PAT Lifecycle API requires since June 2025 (contract §2). MSAL adds
# offline_access (refresh token), openid and profile by itself.
PAT_READ_SCOPE = f"{AZURE_DEVOPS_RESOURCE}/vso.pats"
PAT_MANAGE_SCOPE = f"{AZURE_DEVOPS_RESOURCE}/vso.pats_manage"
PAT_SCOPES: tuple[str, ...] = (PAT_READ_SCOPE, PAT_MANAGE_SCOPE)
FULL_ACCESS_SCOPE = "app_token"  # the UI's "Full access"
# Entra permissions that look like PAT scopes but are refused on a PAT (invalidScope).
ENTRA_ONLY_SCOPES = frozenset({"vso.pats", "vso.pats_manage", "user_impersonation"})

# Every scope a PAT may carry ("Available scopes").
_SCOPE_TABLE = """
    app_token vso.advsec vso.advsec_write vso.advsec_manage vso.agentpools vso.agentpools_manage
    vso.environment_manage vso.analytics vso.auditlog vso.auditstreams_manage vso.build
    vso.build_execute vso.code vso.code_write vso.code_manage vso.code_full vso.code_status
    vso.connected_server vso.entitlements vso.memberentitlementmanagement
    vso.memberentitlementmanagement_write vso.extension vso.extension_manage vso.extension.data
    vso.extension.data_write vso.githubconnections vso.githubconnections_manage vso.graph
    vso.graph_manage vso.identity vso.identity_manage vso.machinegroup_manage vso.gallery
    vso.gallery_acquire vso.gallery_publish vso.gallery_manage vso.notification
    vso.notification_write vso.notification_manage vso.notification_diagnostics vso.packaging
    vso.packaging_write vso.packaging_manage vso.pipelineresources_use vso.pipelineresources_manage
    vso.project vso.project_write vso.project_manage vso.release vso.release_execute
    vso.release_manage vso.securefiles_read vso.securefiles_write vso.securefiles_manage
    vso.security_manage vso.serviceendpoint vso.serviceendpoint_query vso.serviceendpoint_manage
    vso.hooks vso.hooks_write vso.hooks_interact vso.settings vso.settings_write vso.symbols
    vso.symbols_write vso.symbols_manage vso.taskgroups_read vso.taskgroups_write
    vso.taskgroups_manage vso.dashboards vso.dashboards_manage vso.test vso.test_write
    vso.threads_full vso.tokens vso.tokenadministration vso.profile vso.profile_write
    vso.variablegroups_read vso.variablegroups_write vso.variablegroups_manage vso.wiki
    vso.wiki_write vso.work vso.work_write vso.work_full
"""
KNOWN_PAT_SCOPES = frozenset(_SCOPE_TABLE.split())

# Scope suffixes from weakest to strongest: a stronger one implies the weaker ones.
_RANKS = {"_read": 0, "_use": 1, "_query": 1, "_execute": 2, "_write": 3, "_manage": 4, "_full": 5}
_BY_LENGTH = sorted(_RANKS.items(), key=lambda item: -len(item[0]))


def _split(scope: str) -> tuple[str, int]:
    for suffix, rank in _BY_LENGTH:
        if scope.endswith(suffix):
            return scope[: -len(suffix)], rank
    return scope, 0


def scope_allows(granted: frozenset[str], needed: str) -> bool:
    """True when *granted* includes *needed* directly, through ``app_token`` or by inheritance.

    ``vso.x_manage`` ⊃ ``vso.x_write`` ⊃ ``vso.x`` (or ``vso.x_read``); ``_full`` tops them all.
    """
    if FULL_ACCESS_SCOPE in granted or needed in granted:
        return True
    base, rank = _split(needed)
    for scope in granted:
        other_base, other_rank = _split(scope)
        if other_base == base and other_rank >= rank:
            return True
    return False
