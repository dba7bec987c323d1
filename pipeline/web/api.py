"""The JSON API (``/api/v1``, OpenAPI at ``/openapi.json``): everything the pages do.

Same auth as the pages (session cookie plus ``X-CSRF-Token`` on writes, or a Bearer API token),
same checks (handlers and database). Bodies and query parameters are validated by pydantic; a
bad field gets 422 with a message naming it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request
from pydantic import BaseModel, Field

from pipeline.web import books, queue
from pipeline.web.access import NotFound, org_id, require
from pipeline.web.app import check_csrf, who
from pipeline.web.identity import ANY_ROLE
from pipeline.web.pages import REPORTS, bulk_approve, report_data


class Refusal(BaseModel):
    detail: str | list[dict[str, Any]] = Field(description="why; for a malformed field, pydantic's list of errors")


# What any operation may answer besides its own success (the message says why)
_COMMON = {400: "malformed request", 401: "not signed in (session cookie or Bearer token)",
           403: "the caller's role or organisations do not allow this, or the CSRF token is missing",
           404: "nothing the caller may see has this id", 422: "a field is invalid (the message names it)"}
router = APIRouter(tags=["workspace"], responses={code: {"model": Refusal, "description": text}
                                                  for code, text in _COMMON.items()})
_UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_PERIOD = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
AMOUNT_MAX = Decimal("1e15")


class Organization(BaseModel):
    id: str
    name: str
    approval_threshold: str | None = None


class Me(BaseModel):
    username: str
    display_name: str
    platform_admin: bool
    roles: dict[str, list[str]]


class Decision(BaseModel):
    organization_id: str = Field(pattern=_UUID)
    event_id: str = Field(min_length=1, max_length=128)
    decision: Literal["approve", "correct"]
    smart_code: str | None = Field(default=None, max_length=200,
                                   description="required to correct: a smart code of the catalog")


class Claim(BaseModel):
    organization_id: str
    event_id: str
    decision_id: str
    decision: str
    smart_code: str | None
    state: str


class ItemRef(BaseModel):
    organization_id: str = Field(pattern=_UUID)
    event_id: str = Field(min_length=1, max_length=128)


class BulkApprove(BaseModel):
    items: list[ItemRef] = Field(default_factory=list, max_length=queue.BULK_ITEMS_MAX)
    counterparty: str | None = Field(default=None, min_length=1, max_length=200,
                                     description="approve every open item of exactly this counterparty")
    organization_id: str | None = Field(default=None, pattern=_UUID, description="limit counterparty to one org")


class BulkOutcome(BaseModel):
    organization_id: str
    event_id: str
    outcome: Literal["sent", "refused"]
    detail: str


class QueuePage(BaseModel):
    total: int
    page: int
    page_size: int
    pages: int
    items: list[dict[str, Any]]


class ItemStatus(BaseModel):
    organization_id: str
    event_id: str
    item_status: str
    state: Literal["open", "pending", "posted", "refused"]
    decided_by: str | None
    reason: str | None
    entry: dict[str, Any] | None


@router.get("/me", response_model=Me)
async def me(request: Request) -> Me:
    w = await who(request)
    u = w.user
    return Me(username=u.username, display_name=u.display_name, platform_admin=u.platform_admin,
              roles={o: sorted(r) for o, r in u.grants.items()})


@router.get("/organizations", response_model=list[Organization])
async def organizations(request: Request) -> list[dict[str, Any]]:
    w = await who(request)
    return await request.app.state.db.organizations(w.user)


@router.get("/smart-codes", response_model=list[dict[str, str]])
async def smart_codes(request: Request) -> list[dict[str, str]]:
    await who(request)
    return [{"smart_code": s.code, "description": s.description}
            for s in sorted(request.app.state.catalog.smart_codes.values(), key=lambda s: s.code)]


@router.get("/review", response_model=QueuePage)
async def review_list(
    request: Request,
    org: Annotated[str | None, Query(pattern=_UUID)] = None,
    smart_code: Annotated[str | None, Query(max_length=200)] = None,
    amount_min: Annotated[Decimal | None, Query(ge=0, le=AMOUNT_MAX)] = None,
    amount_max: Annotated[Decimal | None, Query(ge=0, le=AMOUNT_MAX)] = None,
    age_days_min: Annotated[int | None, Query(ge=0, le=36_500)] = None,
    counterparty: Annotated[str | None, Query(max_length=200)] = None,
    reason: Literal["LOW_CONFIDENCE", "AMOUNT_OVER_CAP", "SUSPENSE", "INCOMPLETE_EVENT", "LINE_UNCLASSIFIED"] | None = None,
    sort: Literal["oldest", "newest", "amount_desc", "amount_asc", "confidence", "counterparty"] = "oldest",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=queue.PAGE_SIZE_MAX)] = queue.PAGE_SIZE_DEFAULT,
) -> dict[str, Any]:
    """Open review items across the caller's organisations, filtered, sorted and paged."""
    w = await who(request)
    f = queue.QueueFilter(org=org and org_id(org), smart_code=smart_code or None, amount_min=amount_min,
                          amount_max=amount_max, age_days_min=age_days_min, counterparty=counterparty or None,
                          reason=reason, sort=sort, page=page, page_size=page_size)
    return await queue.list_queue(request.app.state.db, w.user, f)


@router.post("/review/decide", response_model=Claim, responses={409: {"model": Refusal, "description": "decided by someone else first"},
                                                            503: {"model": Refusal, "description": "the pipeline's broker is unreachable"}})
async def review_decide(request: Request, body: Decision,
                        x_csrf_token: Annotated[str | None, Header(max_length=200)] = None) -> dict[str, Any]:
    """Approve or correct one item. 409: someone else decided it first (the detail says who)."""
    w = await who(request)
    check_csrf(w, x_csrf_token)
    return await queue.decide(request.app.state.db, request.app.state.send, w.user, org_id(body.organization_id),
                              body.event_id, body.decision, body.smart_code, catalog=request.app.state.catalog)


@router.post("/review/bulk-approve", response_model=list[BulkOutcome])
async def review_bulk(request: Request, body: BulkApprove,
                      x_csrf_token: Annotated[str | None, Header(max_length=200)] = None) -> list[dict[str, Any]]:
    """Approve the listed items, or every open item of one counterparty; one outcome per item."""
    w = await who(request)
    check_csrf(w, x_csrf_token)
    if body.counterparty:
        targets = await queue.counterparty_items(request.app.state.db, w.user, body.counterparty,
                                                 body.organization_id and org_id(body.organization_id))
    else:
        targets = [(org_id(i.organization_id), i.event_id) for i in body.items]
    return await bulk_approve(request, w, targets)


@router.get("/review/{org}/{event_id}/status", response_model=ItemStatus)
async def review_status(request: Request, org: str, event_id: str) -> dict[str, Any]:
    """Where a decided item stands: pending, posted (with the entry and its lines) or refused (why)."""
    w = await who(request)
    require(w.user, org_id(org), ANY_ROLE, "see this item")
    return await queue.item_status(request.app.state.db, w.user, org_id(org), event_id)


@router.get("/books/{org}/{report}")
async def books_report(request: Request, org: str, report: str,
                       period: Annotated[str | None, Query(pattern=_PERIOD)] = None,
                       since: Annotated[str | None, Query(pattern=_PERIOD)] = None) -> dict[str, Any]:
    """trial-balance, balance-sheet, profit-and-loss (since..period) or audit (the chain re-walked)."""
    w = await who(request)
    if report not in REPORTS:
        raise NotFound("no such report")
    require(w.user, org_id(org), ANY_ROLE, "see the books")
    return await report_data(request.app.state.db, w.user, org_id(org), report, period=period, since=since)


@router.get("/books/{org}/ledger/{account}")
async def books_ledger(request: Request, org: str, account: str) -> dict[str, Any]:
    w = await who(request)
    org = org_id(org)
    require(w.user, org, ANY_ROLE, "see the books")
    async with request.app.state.db.as_user(w.user, [org]) as conn:
        return await books.account_ledger(conn, org, account)


@router.get("/books/{org}/entries/{entry_id}")
async def books_entry(request: Request, org: str, entry_id: str) -> dict[str, Any]:
    w = await who(request)
    org = org_id(org)
    require(w.user, org, ANY_ROLE, "see the books")
    async with request.app.state.db.as_user(w.user, [org]) as conn:
        data = await books.entry(conn, org, entry_id)
    if data is None:
        raise NotFound("no such entry")
    return data
