"""Fixed identifiers of Azure DevOps: resource id, Entra scopes, api-versions and default hosts."""

from __future__ import annotations

# The Entra resource id and the scopes patwarden requests (contract §1.1, §2, §4.1) are defined once
# in patwarden.domain.scopes: vso.pats + vso.pats_manage for the PAT Lifecycle API (both on every
# PAT call, so one cached token serves the whole run), `/.default` for everything else.
from patwarden.domain.scopes import AZURE_DEVOPS_DEFAULT_SCOPE, AZURE_DEVOPS_RESOURCE
from patwarden.domain.scopes import FULL_ACCESS_SCOPE as FULL_ACCESS_SCOPE
from patwarden.domain.scopes import PAT_MANAGE_SCOPE as PAT_MANAGE_SCOPE
from patwarden.domain.scopes import PAT_READ_SCOPE as PAT_READ_SCOPE
from patwarden.domain.scopes import PAT_SCOPES as PAT_SCOPES

ADO_RESOURCE_ID = AZURE_DEVOPS_RESOURCE
DEFAULT_SCOPE = AZURE_DEVOPS_DEFAULT_SCOPE

# api-version per API family. Every request carries one (the services reject requests without).
PAT_API_VERSION = "7.1-preview.1"  # contract §1.1
TOKEN_ADMIN_API_VERSION = "7.1-preview.1"  # noqa: S105  # a version, not a password; §3.1
GRAPH_API_VERSION = "7.1-preview.1"
DISTRIBUTED_TASK_API_VERSION = "7.1"  # contract §9.1
SERVICE_ENDPOINT_API_VERSION = "7.1"  # contract §9.2
CORE_API_VERSION = "7.1"  # contract §6 (projects)
CONNECTION_DATA_API_VERSION = "7.1-preview"  # undocumented resource, contract §6 / open question 10

# Real-Azure hosts; the emulator replaces them through configuration.
DEFAULT_AZURE_DEVOPS_URL = "https://dev.azure.com"
DEFAULT_VSSPS_URL = "https://vssps.dev.azure.com"

# Full access. Tenant policy may forbid it (contract §7.1, §7.3); patwarden refuses it by default.
