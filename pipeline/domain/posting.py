"""Posting rules: turn a validated event and its smart code into a balanced journal entry.

``build_entry`` implements every recipe of docs/posting-rules.md. The recipe and its accounts come from
the catalog (data); this module only knows the *shape* of each recipe. Expected failures come
back as ``Rejected`` with one reason, never as exceptions:

* ``SMART_CODE_INVALID`` – code unknown to the catalog, or a line category / line code that is
  not an expense (or suspense) code, or an inventory code that contradicts ``adjustment``;
* ``LINES_MISMATCH``     – lines ≠ amount − tax − tip, payments ≠ amount, payroll or loan parts
  ≠ amount, tip > amount, withholdings > gross, fees > card payments;
* ``TAX_INVALID``        – a tax amount larger than the taxable amount;
* ``INCOMPLETE_EVENT``   – the recipe needs a part the event lacks (POS payments, payroll, loan);
* ``ACCOUNT_UNKNOWN``    – an account (e.g. a transfer's ``metadata.to_account``) not in the chart;
* ``UNBALANCED``         – guard: a recipe produced an unbalanced or negative entry (a bug).

Tax (docs/posting-rules.md): taxable = amount − tip; with a rate, net = taxable / (1 + rate) rounded half-even
to the currency's minor unit and tax = taxable − net; with ``tax.amount``, net = taxable − tax.

Money account: ``bank_feed`` events move 1010 bank and ``card_feed`` events 2300 corporate card
payable (``Catalog.money_accounts``); other sources use the recipe's ``bank`` role. When a feed's
``direction`` contradicts a money recipe's natural flow (money out on an interest code, money in
on an expense code) the sides are reversed: the money really moved that way.

Internal transfers: DR ``metadata.to_account`` / CR ``metadata.from_account``, each defaulting to
the bank account (1010 or its org override); an org with several bank accounts either names
them in metadata or remaps 1010 through its account overrides. Both must be money accounts
(``TRANSFER_ACCOUNTS``: cash 1000 and bank 1010, or the org's accounts they are remapped to) and
distinct, else ``TRANSFER_ACCOUNTS_INVALID``: a producer cannot move cash into revenue by naming it.

Every line carries the entry's smart code; org account overrides are applied last.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal, localcontext
from typing import NamedTuple

from pipeline.domain.catalog import Catalog, SmartCodeSpec
from pipeline.domain.entries import LINES_PER_ENTRY_MAX, JournalEntry, JournalLine, Side, imbalances
from pipeline.domain.money import fits_currency, quantize
from pipeline.domain.outcomes import Reason, Rejected
from schemas.events import Direction, RawTransactionV1, Source

ZERO = Decimal(0)
MONEY_IN_RECIPES = frozenset({"money_in", "refund"})
MONEY_OUT_RECIPES = frozenset({"money_out", "expense", "loan_repayment"})


# Leg, Split and _Ctx are named tuples: immutable like frozen dataclasses, and much cheaper to make
# (every entry makes several of them)
class Leg(NamedTuple):
    account: str          # standard account code (org overrides are applied at the end)
    side: Side
    amount: Decimal
    description: str | None = None


class Split(NamedTuple):
    net: Decimal
    tax: Decimal
    tip: Decimal


class _Reject(Exception):
    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.rejected = Rejected(reason, detail)


class _Ctx(NamedTuple):
    event: RawTransactionV1
    spec: SmartCodeSpec
    catalog: Catalog
    split: Split
    line_codes: Mapping[int, str]

    def role(self, name: str) -> str:
        return self.spec.accounts[name]

    @property
    def money(self) -> str:
        if self.event.source == Source.BANK_FEED:
            return self.catalog.money_accounts["bank_feed"]
        if self.event.source == Source.CARD_FEED:
            return self.catalog.money_accounts["card_feed"]
        return self.spec.accounts.get("bank", self.catalog.money_accounts["bank_feed"])


def build_entry(event: RawTransactionV1, smart_code: str, catalog: Catalog, *,
                line_codes: Mapping[int, str] | None = None,
                created_by: str = "hera-stream") -> JournalEntry | Rejected:
    """The balanced journal entry of ``event`` under ``smart_code``, or why there is none."""
    spec = catalog.spec(smart_code)
    if spec is None:
        return Rejected(Reason.SMART_CODE_INVALID, f"smart code {smart_code[:140]!r} is not in the catalog")
    try:
        split = _split(event)
        ctx = _Ctx(event, spec, catalog, split, line_codes or {})
        legs = _flow(ctx, RECIPES[spec.recipe](ctx))
        lines = _lines(ctx, legs)
    except _Reject as exc:
        return exc.rejected
    return JournalEntry(
        organization_id=str(event.organization_id), event_id=event.event_id, smart_code=smart_code,
        occurred_at=event.occurred_at, currency=event.currency, lines=lines, source=str(event.source),
        reference=event.reference, description=event.description, counterparty=event.counterparty,
        created_by=created_by, metadata=dict(event.metadata or {}))


def split_tax(event: RawTransactionV1) -> Split | Rejected:
    """Net, tax and tip of ``amount`` (docs/posting-rules.md), or why the event's parts do not add up."""
    try:
        return _split(event)
    except _Reject as exc:
        return exc.rejected


def _split(event: RawTransactionV1) -> Split:
    ccy, amount = event.currency, event.amount
    tip = event.tip or ZERO
    if tip > amount:
        raise _Reject(Reason.LINES_MISMATCH, f"tip {tip} exceeds amount {amount}")
    taxable = amount - tip
    if event.tax is None:
        tax = ZERO
    elif event.tax.rate is not None:
        with localcontext() as dec:
            dec.prec = 50
            net = quantize(taxable / (1 + event.tax.rate), ccy)
        tax = taxable - net
    else:
        tax = event.tax.amount or ZERO
    net = taxable - tax
    _check_parts(event, net)
    if net < ZERO:
        raise _Reject(Reason.TAX_INVALID, f"tax {tax} exceeds the taxable amount {taxable}")
    return Split(net, tax, tip)


def _check_parts(event: RawTransactionV1, net: Decimal) -> None:
    amount = event.amount
    if event.lines and sum((line.amount for line in event.lines), ZERO) != net:
        raise _Reject(Reason.LINES_MISMATCH, f"lines sum to {sum(x.amount for x in event.lines)}, "
                      f"expected amount - tax - tip = {net}")
    if event.payments and sum((p.amount for p in event.payments), ZERO) != amount:
        raise _Reject(Reason.LINES_MISMATCH, f"payments do not sum to amount {amount}")
    if event.payroll and event.payroll.gross + event.payroll.employer_taxes != amount:
        raise _Reject(Reason.LINES_MISMATCH, f"payroll gross + employer_taxes != amount {amount}")
    if event.payroll and event.payroll.employee_withholdings > event.payroll.gross:
        raise _Reject(Reason.LINES_MISMATCH, "payroll withholdings exceed gross")
    if event.loan and event.loan.principal + event.loan.interest != amount:
        raise _Reject(Reason.LINES_MISMATCH, f"loan principal + interest != amount {amount}")


# ---------------------------------------------------------------- recipes (standard accounts)

def _invoice(ctx: _Ctx) -> list[Leg]:
    event, split = ctx.event, ctx.split
    legs = [Leg(ctx.role("receivable"), "DR", event.amount)]
    legs += [Leg(account, "CR", amount, text) for account, amount, text in _revenue(ctx)]
    legs += [Leg(ctx.role("output_tax"), "CR", split.tax), Leg(ctx.role("tips"), "CR", split.tip)]
    return legs


def _credit_note(ctx: _Ctx) -> list[Leg]:
    return _reversed(_invoice(ctx))


def _revenue(ctx: _Ctx) -> list[tuple[str, Decimal, str | None]]:
    if not ctx.event.lines:
        return [(ctx.role("revenue_product"), ctx.split.net, None)]
    return [(ctx.role("revenue_service" if line.category == "service" else "revenue_product"),
             line.amount, line.description) for line in ctx.event.lines]


def _pos_summary(ctx: _Ctx) -> list[Leg]:
    event, split = ctx.event, ctx.split
    if not event.payments:
        raise _Reject(Reason.INCOMPLETE_EVENT, "pos.daily_summary needs payments")
    cash = sum((p.amount for p in event.payments if p.method == "cash"), ZERO)
    card = sum((p.amount for p in event.payments if p.method == "card"), ZERO)
    fees = event.fees or ZERO
    if fees > card:
        raise _Reject(Reason.LINES_MISMATCH, f"fees {fees} exceed card payments {card}")
    legs = [Leg(ctx.role("cash"), "DR", cash), Leg(ctx.role("card_clearing"), "DR", card - fees),
            Leg(ctx.role("card_fees"), "DR", fees)]
    legs += [Leg(account, "CR", amount, text) for account, amount, text in _revenue(ctx)]
    legs += [Leg(ctx.role("output_tax"), "CR", split.tax), Leg(ctx.role("tips"), "CR", split.tip)]
    return legs


def _bill(ctx: _Ctx) -> list[Leg]:
    return _expense_legs(ctx, ctx.role("expense_default"), ctx.role("payable"))


def _expense(ctx: _Ctx) -> list[Leg]:
    return _expense_legs(ctx, ctx.role("expense"), ctx.money)


def _refund(ctx: _Ctx) -> list[Leg]:
    return _reversed(_expense_legs(ctx, ctx.role("expense"), ctx.money))


def _expense_legs(ctx: _Ctx, default_expense: str, counter: str) -> list[Leg]:
    """DR expense per line (net), tip to the first expense account, DR input VAT / CR counter gross."""
    event, split = ctx.event, ctx.split
    if event.lines:
        debits = [Leg(_line_account(ctx, i, line.category, default_expense), "DR", line.amount,
                      line.description) for i, line in enumerate(event.lines)]
    else:
        debits = [Leg(_line_account(ctx, 0, None, default_expense), "DR", split.net)]
    tip_account = debits[0].account
    return [*debits, Leg(tip_account, "DR", split.tip), Leg(ctx.role("input_tax"), "DR", split.tax),
            Leg(counter, "CR", event.amount)]


def _line_account(ctx: _Ctx, index: int, category: str | None, default: str) -> str:
    code = category if category not in (None, "product", "service") else ctx.line_codes.get(index)
    if code is None:
        return default
    spec = ctx.catalog.spec(code)
    if spec is None or spec.family not in ("expense", "suspense"):
        raise _Reject(Reason.SMART_CODE_INVALID, f"line {index}: {code[:140]!r} is not an expense code")
    return spec.primary_account


def _payroll(ctx: _Ctx) -> list[Leg]:
    payroll = ctx.event.payroll
    if payroll is None:
        raise _Reject(Reason.INCOMPLETE_EVENT, "payroll.run needs payroll")
    return [Leg(ctx.role("wages"), "DR", payroll.gross),
            Leg(ctx.role("employer_taxes"), "DR", payroll.employer_taxes),
            Leg(ctx.role("payroll_liabilities"), "CR", payroll.employee_withholdings + payroll.employer_taxes),
            Leg(ctx.role("net_pay"), "CR", payroll.gross - payroll.employee_withholdings)]


def _goods_received(ctx: _Ctx) -> list[Leg]:
    amount, tax = ctx.event.amount, ctx.split.tax
    return [Leg(ctx.role("inventory"), "DR", amount - tax), Leg(ctx.role("input_tax"), "DR", tax),
            Leg(ctx.role("payable"), "CR", amount)]


def _fixed(ctx: _Ctx) -> list[Leg]:
    adjustment, variant = ctx.event.adjustment, ctx.spec.variant
    if adjustment is not None and variant is not None and str(adjustment) != variant:
        raise _Reject(Reason.SMART_CODE_INVALID, f"{ctx.spec.code} contradicts adjustment {adjustment}")
    amount = ctx.event.amount
    return [Leg(ctx.role("debit"), "DR", amount), Leg(ctx.role("credit"), "CR", amount)]


def _loan_repayment(ctx: _Ctx) -> list[Leg]:
    loan = ctx.event.loan
    if loan is None:
        raise _Reject(Reason.INCOMPLETE_EVENT, "loan.repayment needs loan principal and interest")
    return [Leg(ctx.role("principal"), "DR", loan.principal), Leg(ctx.role("interest"), "DR", loan.interest),
            Leg(ctx.money, "CR", ctx.event.amount)]


def _money_in(ctx: _Ctx) -> list[Leg]:
    amount = ctx.event.amount
    return [Leg(ctx.money, "DR", amount), Leg(ctx.role("counter"), "CR", amount)]


def _money_out(ctx: _Ctx) -> list[Leg]:
    amount = ctx.event.amount
    return [Leg(ctx.role("counter"), "DR", amount), Leg(ctx.money, "CR", amount)]


def _suspense(ctx: _Ctx) -> list[Leg]:
    amount = ctx.event.amount
    legs = [Leg(ctx.role("suspense"), "DR", amount), Leg(ctx.money, "CR", amount)]
    return _reversed(legs) if ctx.event.direction == Direction.CREDIT else legs


def _transfer(ctx: _Ctx) -> list[Leg]:
    metadata, amount = ctx.event.metadata or {}, ctx.event.amount
    to_account = _metadata_account(metadata, "to_account", ctx.money)
    from_account = _metadata_account(metadata, "from_account", ctx.money)
    catalog = ctx.catalog
    money = {catalog.account(code) for code in TRANSFER_ACCOUNTS}
    ends = (catalog.account(to_account), catalog.account(from_account))
    if ends[0] == ends[1] or not set(ends) <= money:
        raise _Reject(Reason.TRANSFER_ACCOUNTS_INVALID,
                      "a transfer moves money between two distinct cash or bank accounts")
    return [Leg(to_account, "DR", amount), Leg(from_account, "CR", amount)]


def _metadata_account(metadata: Mapping[str, object], key: str, default: str) -> str:
    value = metadata.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise _Reject(Reason.ACCOUNT_UNKNOWN, f"metadata.{key} must be an account code string")
    return value


TRANSFER_ACCOUNTS = ("1000", "1010")   # the chart's cash and bank (docs/catalog.md; org overrides apply)
RECIPES: Mapping[str, Callable[[_Ctx], list[Leg]]] = {
    "invoice": _invoice, "credit_note": _credit_note, "money_in": _money_in, "money_out": _money_out,
    "bill": _bill, "pos_summary": _pos_summary, "payroll": _payroll, "goods_received": _goods_received,
    "fixed": _fixed, "loan_repayment": _loan_repayment, "transfer": _transfer, "expense": _expense,
    "refund": _refund, "suspense": _suspense,
}


# ---------------------------------------------------------------- assembly and guards

def _reversed(legs: list[Leg]) -> list[Leg]:
    return [Leg(leg.account, "CR" if leg.side == "DR" else "DR", leg.amount, leg.description) for leg in legs]


def _flow(ctx: _Ctx, legs: list[Leg]) -> list[Leg]:
    """Reverse a money recipe whose natural flow contradicts the event's explicit direction."""
    direction, recipe = ctx.event.direction, ctx.spec.recipe
    if (direction == Direction.CREDIT and recipe in MONEY_OUT_RECIPES) or \
            (direction == Direction.DEBIT and recipe in MONEY_IN_RECIPES):
        return _reversed(legs)
    return legs


def _lines(ctx: _Ctx, legs: list[Leg]) -> tuple[JournalLine, ...]:
    """Apply org account overrides, drop zero legs, merge same account+side, check every guard."""
    catalog, ccy, code = ctx.catalog, ctx.event.currency, ctx.spec.code
    known, overrides = catalog.known_accounts, catalog.account_overrides
    merged: dict[tuple[str, Side], list[Leg]] = {}
    for leg in legs:
        account = overrides.get(leg.account, leg.account)      # catalog.account, inlined: it runs per leg
        if account not in known:
            raise _Reject(Reason.ACCOUNT_UNKNOWN, f"account {account[:40]!r} is not in the chart of accounts")
        amount = leg.amount
        if not amount:              # zero legs (no tip, no tax) are dropped; zero fits every currency
            continue
        if amount < ZERO or not fits_currency(amount, ccy):
            raise _Reject(Reason.UNBALANCED, f"recipe {ctx.spec.recipe} produced amount {amount} {ccy}")
        group = merged.get((account, leg.side))
        if group is None:
            merged[(account, leg.side)] = [leg]
        else:
            group.append(leg)
    lines: list[JournalLine] = []
    net = ZERO                  # debits minus credits (one currency): ``imbalances``, without its dict
    for (account, side), group in merged.items():
        if len(group) == 1:
            amount, description = group[0].amount, group[0].description
        else:
            amount, description = sum((g.amount for g in group), ZERO), _shared_description(group)
        lines.append(JournalLine(account, side, amount, ccy, code, description))
        net = net + amount if side == "DR" else net - amount
    if len(lines) > LINES_PER_ENTRY_MAX:
        raise _Reject(Reason.LINES_MISMATCH, f"{len(lines)} lines exceed {LINES_PER_ENTRY_MAX}")
    if net or not lines:
        raise _Reject(Reason.UNBALANCED, f"recipe {ctx.spec.recipe} is unbalanced: {imbalances(lines)}")
    return tuple(lines)


def _shared_description(group: list[Leg]) -> str | None:
    texts = {leg.description for leg in group}
    return texts.pop() if len(texts) == 1 else None
