"""The emulated organization's PAT policies and emulator knobs (``PUT /_admin/policies``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Literal


@dataclass(frozen=True)
class Policies:
    """The switchable PAT policies and emulator knobs (``PUT /_admin/policies``, contract §7.3)."""

    max_lifespan_days: int | None = None
    lifespan_mode: Literal["clamp", "refuse"] = "clamp"
    restrict_full_scope: bool = False
    restrict_global: bool = False
    disable_pat_creation: bool = False
    allowlist: tuple[str, ...] = ()
    revoke_status: int = 204
    service_principals_token_admin: bool = False
    pat_format: Literal["azdo84", "legacy52"] = "azdo84"
    graph_page_size: int = 500
    # Which Entra scopes the PAT Lifecycle API wants (issue 15 item 5): "per_operation" (the 7.2
    # spec: reads vso.pats, writes vso.pats_manage), "manage_implies_read" (vso.pats_manage also
    # reads), "both_required" (a third-party probe: every call needs both scopes).
    pat_api_scopes: Literal["per_operation", "manage_implies_read", "both_required"] = (
        "per_operation"
    )
    # A PUT of a service endpoint with a secret parameter sent as null: "reset" clears it, as
    # terraform-provider-azuredevops issues 550 and 719 report; "keep" keeps the stored value.
    service_endpoint_null_parameter: Literal["reset", "keep"] = "reset"

    def is_exempt(self, upn: str) -> bool:
        """True when *upn* is on the policies' allowlist."""
        return upn.lower() in self.allowlist

    def to_json(self) -> dict[str, Any]:
        """The JSON document the admin API shows."""
        document = asdict(self)
        document["allowlist"] = list(self.allowlist)
        return document


_PAT_API_SCOPE_MODES = ("per_operation", "manage_implies_read", "both_required")


def policies_from_json(current: Policies, document: dict[str, Any]) -> Policies:
    """Merge a (partial) admin document into *current*.

    Raises:
        ValueError: an unknown key or a value of the wrong kind (the message names it).
    """
    known = set(asdict(current))
    unknown = sorted(set(document) - known)
    if unknown:
        raise ValueError(f"unknown policy keys: {', '.join(unknown)}; known: {sorted(known)}")
    changes: dict[str, Any] = {}
    for key, value in document.items():
        if key == "allowlist":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError("allowlist must be a list of user principal names")
            changes[key] = tuple(v.lower() for v in value)
        elif key == "max_lifespan_days":
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError("max_lifespan_days must be a positive integer or null")
            changes[key] = value
        elif key == "lifespan_mode" and value not in ("clamp", "refuse"):
            raise ValueError("lifespan_mode must be 'clamp' or 'refuse'")
        elif key == "revoke_status" and value not in (200, 204):
            raise ValueError("revoke_status must be 200 or 204")
        elif key == "pat_format" and value not in ("azdo84", "legacy52"):
            raise ValueError("pat_format must be 'azdo84' or 'legacy52'")
        elif key == "service_endpoint_null_parameter" and value not in ("reset", "keep"):
            raise ValueError("service_endpoint_null_parameter must be 'reset' or 'keep'")
        elif key == "pat_api_scopes" and value not in _PAT_API_SCOPE_MODES:
            raise ValueError(f"pat_api_scopes must be one of {', '.join(_PAT_API_SCOPE_MODES)}")
        elif key == "graph_page_size" and (not isinstance(value, int) or not 1 <= value <= 500):
            raise ValueError("graph_page_size must be an integer from 1 to 500")
        elif isinstance(getattr(current, key), bool) and not isinstance(value, bool):
            raise ValueError(f"{key} must be true or false")
        if key != "allowlist":
            changes[key] = value
    return replace(current, **changes)
