"""Fixed identifiers of Azure DevOps: resource id, Entra scopes, api-versions and default hosts."""

from __future__ import annotations

# Azure DevOps' Entra resource (application) id; request tokens for it, not for its URI.
# Contract §4.1 (entra-oauth and service-principal pages).
ADO_RESOURCE_ID = "499b84ac-1321-427f-aa17-267ca6975798"

# Delegated scopes the PAT Lifecycle API requires since June 2025 (contract §1.1, §2; sprint 257):
# vso.pats for GET, vso.pats_manage for POST/PUT/DELETE. We ask for both on every PAT call so one
# cached token serves the whole run.
PAT_READ_SCOPE = f"{ADO_RESOURCE_ID}/vso.pats"
PAT_MANAGE_SCOPE = f"{ADO_RESOURCE_ID}/vso.pats_manage"
PAT_SCOPES: tuple[str, ...] = (PAT_READ_SCOPE, PAT_MANAGE_SCOPE)

# Everything else (Token Admin, Graph, variable groups, service endpoints) uses the statically
# consented permissions of the app (contract §4.1); configurable per client.
DEFAULT_SCOPE = f"{ADO_RESOURCE_ID}/.default"

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
FULL_ACCESS_SCOPE = "app_token"
