"""The PAT Lifecycle API: create, get, list, update/extend and revoke the signed-in user's PATs.

``{vssps_url}/{org}/_apis/tokens/pats?api-version=7.1-preview.1`` (contract §1). Only a user's
delegated Entra token is accepted (contract §2); business errors come back as HTTP 200 with
``patTokenError`` and are raised as the exceptions in :mod:`patwarden.azdo.errors`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from patwarden.azdo import validation
from patwarden.azdo.constants import FULL_ACCESS_SCOPE, PAT_API_VERSION, PAT_SCOPES
from patwarden.azdo.errors import (
    AzdoUnexpectedResponse,
    CreateOutcomeUnknown,
    RequestOutcomeUnknown,
    pat_error,
)
from patwarden.azdo.models import (
    DisplayFilter,
    PatCreateResult,
    PatToken,
    PatUpdateResult,
    SortBy,
    as_object,
)
from patwarden.azdo.paging import body_token, iter_page_items
from patwarden.azdo.responses import json_body, unexpected
from patwarden.azdo.timestamps import format_datetime
from patwarden.azdo.transport import AzdoTransport, Bearer, ServiceUrls
from patwarden.errors import ConfigError
from patwarden.secret import Secret

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 100  # "$top … limit of 100" (contract §1.5)
# The service rounds validTo like SQL datetime (…23.319Z → …23.32Z, contract §1.4); anything
# shorter than the request by more than this is a policy clamp.
CLAMP_TOLERANCE = timedelta(seconds=1)


def _check_global(*, all_orgs: bool, allow_global: bool) -> None:
    if all_orgs and not allow_global:
        raise ConfigError(
            "Refusing to create a global PAT (valid in all organizations): pass "
            "allow_global=True to really ask for one.",
            hint="Use an organization-scoped PAT; global PATs stop working on 2026-12-01.",
        )


def _check_scopes(scopes: Sequence[str], *, allow_full_access: bool) -> tuple[str, ...]:
    checked = validation.pat_scopes(tuple(scopes))
    if FULL_ACCESS_SCOPE in checked and not allow_full_access:
        raise ConfigError(
            f"Refusing to request full access ({FULL_ACCESS_SCOPE}) without "
            "allow_full_access=True.",
            hint="List only the scopes the token's consumers need.",
        )
    return checked


class PatClient:
    """Manage the signed-in user's PATs in one or more organizations (thread-safe)."""

    def __init__(
        self,
        *,
        transport: AzdoTransport,
        urls: ServiceUrls,
        scopes: tuple[str, ...] = PAT_SCOPES,
    ) -> None:
        self._transport = transport
        self._urls = urls
        self._auth = Bearer(scopes)

    def _url(self, org: str) -> str:
        return f"{self._urls.vssps_url}/{validation.organization(org)}/_apis/tokens/pats"

    def _result(self, response_body: Any, *, action: str) -> Mapping[str, Any]:
        obj = as_object(response_body, what="the PatTokenResult", action=action)
        code = obj.get("patTokenError", "none")
        if not isinstance(code, str):
            raise unexpected("field 'patTokenError' is not a string", action=action)
        message = obj.get("patTokenErrorMessage")
        error = pat_error(
            code, action=action, server_message=message if isinstance(message, str) else None
        )
        if error is not None:
            raise error
        token = obj.get("patToken")
        if not isinstance(token, Mapping):
            raise unexpected("'patToken' is missing although no error was reported", action=action)
        return token

    def _clamped(
        self, *, requested: datetime | None, granted: PatToken, org: str
    ) -> datetime | None:
        if requested is None or requested - granted.valid_to <= CLAMP_TOLERANCE:
            return None
        logger.warning(
            "Azure DevOps shortened the expiry of PAT %r in organization %r from %s to %s "
            "(maximum-lifespan policy); schedule rotation from the granted expiry",
            granted.display_name,
            org,
            format_datetime(requested),
            format_datetime(granted.valid_to),
        )
        return requested

    def create(
        self,
        *,
        org: str,
        display_name: str,
        scopes: Sequence[str],
        valid_to: datetime,
        all_orgs: bool = False,
        allow_global: bool = False,
        allow_full_access: bool = False,
    ) -> PatCreateResult:
        """Create a PAT bound to *org* (``allOrgs: false``) and return it with its value.

        A global PAT needs both ``all_orgs=True`` and ``allow_global=True``; ``app_token`` needs
        ``allow_full_access=True``. ``targetAccounts`` is never sent (contract §1.3). If policy
        shortened the expiry, the result's ``clamped_from`` holds the requested one.

        Raises:
            ConfigError: a bad name, scope or date, or a global/full-access PAT not allowed.
            CreateOutcomeUnknown: the request may have created a PAT whose answer was lost; look
                it up with :meth:`find_by_display_name` before creating again.
            PatApiError | PatAccessDenied: the service refused (``patTokenError``).
            AzdoAccessDenied | AzdoRequestError: HTTP-level failures (see ``responses``).
        """
        _check_global(all_orgs=all_orgs, allow_global=allow_global)
        checked = _check_scopes(scopes, allow_full_access=allow_full_access)
        name = validation.display_name(display_name)
        try:
            expiry = format_datetime(valid_to)
        except ValueError:
            raise ConfigError(f"PAT {name!r}: valid_to must be timezone-aware.") from None
        action = f"create PAT {name!r} in organization {org!r}"
        body: dict[str, Any] = {
            "displayName": name,
            "scope": " ".join(checked),
            "validTo": expiry,
            "allOrgs": all_orgs,
        }
        url = self._url(org)
        try:
            response = self._transport.send(
                "POST",
                url,
                action=action,
                api_version=PAT_API_VERSION,
                auth=self._auth,
                body=body,
                idempotent=False,
            )
        except RequestOutcomeUnknown as err:
            raise CreateOutcomeUnknown(
                f"Creating PAT {name!r} in organization {org!r} may or may not have succeeded: "
                f"{err.message}",
                organization=org,
                display_name=name,
                status=err.status,
                hint="Do not create it again blindly: look it up by display name "
                "(PatClient.find_by_display_name; the next run reconciles) and adopt or revoke it.",
            ) from None
        try:
            raw = self._result(json_body(response, action=action), action=action)
            value = raw.get("token")
            if not isinstance(value, str) or not value:
                raise unexpected("the created PAT carries no token value", action=action)
            token = PatToken.from_json(raw, action=action)
        except AzdoUnexpectedResponse as err:
            # A success status whose body cannot be read: the PAT may exist with its value lost.
            raise CreateOutcomeUnknown(
                f"Creating PAT {name!r} in organization {org!r} may have succeeded, but the "
                f"answer could not be read: {err.message}",
                organization=org,
                display_name=name,
                status=response.status_code,
                hint="Do not create it again blindly: look it up by display name "
                "(PatClient.find_by_display_name; the next run reconciles) and revoke it.",
            ) from None
        clamped = self._clamped(requested=valid_to, granted=token, org=org)
        return PatCreateResult(
            token=token, value=Secret(value), requested_valid_to=valid_to, clamped_from=clamped
        )

    def get(self, *, org: str, authorization_id: str) -> PatToken:
        """Return the PAT with *authorization_id*.

        Raises:
            PatNotFound: no such PAT for this user (``tokenNotFound``).
            PatAccessDenied: it belongs to someone else (``accessDenied``).
        """
        auth_id = validation.uuid_id(authorization_id, what="authorization id")
        action = f"get PAT {auth_id} in organization {org!r}"
        response = self._transport.send(
            "GET",
            self._url(org),
            action=action,
            api_version=PAT_API_VERSION,
            auth=self._auth,
            params={"authorizationId": auth_id},
        )
        raw = self._result(json_body(response, action=action), action=action)
        return PatToken.from_json(raw, action=action)

    def list_tokens(
        self,
        *,
        org: str,
        display_filter: DisplayFilter = DisplayFilter.ACTIVE,
        sort_by: SortBy = SortBy.DISPLAY_NAME,
        ascending: bool = True,
        page_size: int = MAX_PAGE_SIZE,
    ) -> Iterator[PatToken]:
        """Yield the user's PATs in *org*, fetching pages lazily.

        The continuation token is opaque; every page repeats the same filters (contract §1.5)
        and iteration stops when it is empty or absent.

        Raises:
            ConfigError: *page_size* is not within 1..100.
            AzdoUnexpectedResponse: a page is malformed or the service repeats a token.
        """
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ConfigError(f"PAT list page size {page_size} is not within 1..{MAX_PAGE_SIZE}.")
        url = self._url(org)
        action = f"list PATs in organization {org!r}"
        items = iter_page_items(
            self._transport,
            url,
            action=action,
            api_version=PAT_API_VERSION,
            auth=self._auth,
            params={
                "displayFilterOption": display_filter.value,
                "sortByOption": sort_by.value,
                "isSortAscending": ascending,
                "$top": page_size,
            },
            items_key="patTokens",
            next_token=body_token,
        )
        for item in items:
            yield PatToken.from_json(item, action=action)

    def find_by_display_name(
        self, *, org: str, name: str, display_filter: DisplayFilter = DisplayFilter.ACTIVE
    ) -> tuple[PatToken, ...]:
        """Return the PATs in *org* whose display name is exactly *name* (e.g. after a lost create).

        Raises:
            AzdoRequestError | AzdoAccessDenied: as :meth:`list_tokens`.
        """
        return tuple(
            token
            for token in self.list_tokens(org=org, display_filter=display_filter)
            if token.display_name == name
        )

    def update(
        self,
        *,
        org: str,
        authorization_id: str,
        display_name: str | None = None,
        scopes: Sequence[str] | None = None,
        valid_to: datetime | None = None,
        all_orgs: bool = False,
        allow_global: bool = False,
        allow_full_access: bool = False,
    ) -> PatUpdateResult:
        """Change a PAT's name, scopes or expiry; omitted fields keep their values.

        ``allOrgs: false`` is always sent unless ``all_orgs`` and ``allow_global`` are both True,
        so an update also narrows a legacy global PAT to *org*.

        Raises:
            ConfigError: a bad id, name, scope or date.
            PatNotFound | PatNotModifiable | PatPolicyViolation | PatApiError | PatAccessDenied:
                the service refused (``patTokenError``).
        """
        auth_id = validation.uuid_id(authorization_id, what="authorization id")
        body: dict[str, Any] = {"authorizationId": auth_id, "allOrgs": all_orgs}
        _check_global(all_orgs=all_orgs, allow_global=allow_global)
        if scopes is not None:
            body["scope"] = " ".join(_check_scopes(scopes, allow_full_access=allow_full_access))
        if display_name is not None:
            body["displayName"] = validation.display_name(display_name)
        if valid_to is not None:
            try:
                body["validTo"] = format_datetime(valid_to)
            except ValueError:
                raise ConfigError(f"PAT {auth_id}: valid_to must be timezone-aware.") from None
        action = f"update PAT {auth_id} in organization {org!r}"
        response = self._transport.send(
            "PUT",
            self._url(org),
            action=action,
            api_version=PAT_API_VERSION,
            auth=self._auth,
            body=body,
        )
        raw = self._result(json_body(response, action=action), action=action)
        token = PatToken.from_json(raw, action=action)
        return PatUpdateResult(
            token=token, clamped_from=self._clamped(requested=valid_to, granted=token, org=org)
        )

    def extend(self, *, org: str, authorization_id: str, valid_to: datetime) -> PatUpdateResult:
        """Move a still-valid PAT's expiry to *valid_to* (policy may clamp it).

        Raises:
            PatNotModifiable: the PAT is revoked, or expired (``expiredPatCannotBeExtended``).
        """
        return self.update(org=org, authorization_id=authorization_id, valid_to=valid_to)

    def revoke(self, *, org: str, authorization_id: str) -> None:
        """Revoke a PAT; the service answers 204 (or 200, contract §1.2).

        Raises:
            PatNotFound | PatAccessDenied: reported in a 200 body's ``patTokenError``.
        """
        auth_id = validation.uuid_id(authorization_id, what="authorization id")
        action = f"revoke PAT {auth_id} in organization {org!r}"
        response = self._transport.send(
            "DELETE",
            self._url(org),
            action=action,
            api_version=PAT_API_VERSION,
            auth=self._auth,
            params={"authorizationId": auth_id},
        )
        if response.status_code == 204 or not response.content.strip():
            return
        try:
            body = json.loads(response.content)
        except (ValueError, UnicodeDecodeError):
            return  # a 200 without a JSON body still means the revocation was accepted
        code = body.get("patTokenError") if isinstance(body, dict) else None
        if isinstance(code, str) and (error := pat_error(code, action=action)) is not None:
            raise error
