"""Deterministic generator of the labelled bank/card feed corpus used to train the classifier.

    .venv/bin/python data/classifier/generate_corpus.py [--seed 20261128] [--out data/classifier]

Writes ``corpus_train.jsonl.gz`` and ``corpus_heldout.jsonl.gz`` (raw events per docs/contracts.md plus
``expected_smart_code``, ``merchant_id`` and ``country``) and ``manifest.json`` (counts, sha256).
Same seed → same bytes.

Merchants come from ``brands.py`` (real names, ~48 countries) and from synthetic small
businesses named with local business words (``phrasebank.py``). Each merchant yields several
feed lines rendered the way banks and card networks print them: processor prefixes (``SQ *``,
``TST*``, ``SUMUP *``, ``VNPAY*`` …), store numbers, cities and region codes, 22–25 character
truncation, bank channel text (``KARTENZAHLUNG``, ``PRLV SEPA``, ``POS PURCHASE``), masked card
numbers and MCCs where a card network would carry them.

The held-out split is by *merchant*: a merchant's lines all go to one file, so held-out metrics
measure generalisation to merchants the model never saw. Very common brands (``!`` in
brands.py) are pinned to training.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import math
import random
import re
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent.parent))

from brands import BRANDS  # noqa: E402
from phrasebank import NAME_TEMPLATES, NATIVE_NAMES, WORDS  # noqa: E402
from world import (  # noqa: E402
    CARD_WRAPPERS,
    COMPANY_SUFFIX,
    COUNTRIES,
    DIRECT_DEBIT_CODES,
    DIRECT_DEBIT_WRAPPERS,
    FANCY,
    GIVEN,
    PROCESSOR_PREFIXES,
    SURNAME,
)

from pipeline.classify.codes import SHORT_CODES  # noqa: E402

SEED = 20261128
HELDOUT_PERCENT = 18
ORGS = ("0d6f1c9a-1b2c-4d5e-8f90-a1b2c3d4e5f6", "7e3b2a10-9c8d-4e7f-a6b5-c4d3e2f1a0b9",
        "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f")
AMOUNT_USD = {  # median, log-sigma
    "MEALS": (25, 0.8), "WELFARE": (45, 0.8), "AIR": (320, 0.7), "LODGING": (190, 0.7), "GROUND": (22, 0.9),
    "FUEL": (55, 0.5), "SOFTWARE": (30, 1.0), "TELECOM": (55, 0.6), "UTIL": (140, 0.7), "RENT": (2200, 0.8),
    "SUPPLIES": (45, 0.9), "IT": (450, 1.0), "MARKETING": (250, 1.1), "PROF": (900, 0.9), "INSURANCE": (220, 0.9),
    "TRAINING": (150, 1.0), "SHIPPING": (22, 1.0), "REPAIRS": (160, 1.0), "BANKFEES": (12, 0.9), "HEALTH": (35, 0.9),
    "MISC": (60, 1.0), "SUSPENSE": (150, 1.3), "PAYIN": (1500, 1.1), "INTEREST": (4, 1.2), "REFUND": (45, 1.0),
}
SMALL_MERCHANT_CODES = {"MEALS", "WELFARE", "MISC", "REPAIRS", "HEALTH", "TRAINING", "MARKETING", "PROF",
                        "GROUND", "SUPPLIES", "LODGING", "IT", "SHIPPING"}
NOISE = (" APPLE PAY", " GOOGLE PAY", " CONTACTLESS", " VISA", " MC", " CTLS", " GPAY")


# ----------------------------------------------------------------------------- merchants

def _mid(*parts: str) -> str:
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:12]


def parse_brands(rng: random.Random) -> list[dict]:
    """Real merchants from brands.py; GLOBAL chains get a country per merchant-country pair."""
    out = []
    countries = sorted(COUNTRIES)
    for short, block in BRANDS.items():
        for line in block.strip().splitlines():
            country, _, items = line.partition(":")
            for item in items.split(";"):
                item = item.strip()
                if not item:
                    continue
                pinned = item.startswith("!")
                head, *variants = item.lstrip("!").split("|")
                name, _, mcc = head.partition("=")
                homes = [country.strip()] if country.strip() != "GLOBAL" else rng.sample(countries, 4)
                out.append({"id": _mid(short, name.strip()), "code": short, "name": name.strip(),
                            "mcc": mcc.strip() or None, "descriptors": [v.strip() for v in variants if v.strip()],
                            "countries": homes, "pinned": pinned, "kind": "brand"})
    return out


def _mcc_pool(brands: list[dict]) -> dict[str, list[str]]:
    pool: dict[str, list[str]] = {}
    for m in brands:
        if m["mcc"]:
            pool.setdefault(m["code"], []).append(m["mcc"])
    return pool


def _person(rng: random.Random, lang: str) -> tuple[str, str]:
    given = rng.choice(GIVEN.get(lang, GIVEN["en"]))
    return given, rng.choice(SURNAME.get(lang, SURNAME["en"]))


def _name_part(rng: random.Random, lang: str) -> str:
    roll = rng.random()
    if lang in NATIVE_NAMES and roll < 0.5:
        return rng.choice(NATIVE_NAMES[lang])
    if roll < 0.45:
        return _person(rng, lang)[1]
    if roll < 0.7:
        return _person(rng, lang)[0]
    if roll < 0.85:
        return rng.choice(FANCY)
    return rng.choice(COUNTRIES[rng.choice(sorted(COUNTRIES))][4]).split()[0]


def synth_merchants(rng: random.Random, per_code_country: int) -> list[dict]:
    """Small local businesses named '<type word> <name>' in the country's languages."""
    out, seen = [], set()
    for short, by_lang in WORDS.items():
        for country, (_, _, _, langs, _, _) in sorted(COUNTRIES.items()):
            for _ in range(per_code_country):
                lang = rng.choice(langs)
                words = by_lang.get(lang) or by_lang["en"]
                if rng.random() < 0.2:
                    words = by_lang["en"]
                template = rng.choice(NAME_TEMPLATES.get(lang, NAME_TEMPLATES["en"]))
                name = template.format(t=rng.choice(words), n=_name_part(rng, lang), n2=_name_part(rng, lang))
                if rng.random() < 0.15:
                    name += " " + rng.choice(COMPANY_SUFFIX.get(lang, COMPANY_SUFFIX["en"]))
                key = (short, name)
                if key in seen:
                    continue
                seen.add(key)
                out.append({"id": _mid(short, name, country), "code": short, "name": name, "mcc": None,
                            "descriptors": [], "countries": [country], "pinned": False, "kind": "synth"})
    return out


def opaque_merchants(rng: random.Random, per_code: int) -> list[dict]:
    """Businesses whose name says nothing about what they sell; only the MCC tells."""
    out = []
    for short in WORDS:
        for _ in range(per_code):
            country = rng.choice(sorted(COUNTRIES))
            lang = COUNTRIES[country][3][0]
            a = rng.choice(FANCY) if rng.random() < 0.5 else _person(rng, lang)[1]
            name = f"{a} {rng.choice(('HOLDINGS', 'ENTERPRISES', 'TRADING', 'GROUP', 'VENTURES', 'PARTNERS', 'INTERNATIONAL', 'CO', 'SERVICES', 'SOLUTIONS'))}"
            if rng.random() < 0.5:
                name += " " + rng.choice(COMPANY_SUFFIX.get(lang, COMPANY_SUFFIX["en"]))
            out.append({"id": _mid(short, name, country, "opaque"), "code": short, "name": name, "mcc": None,
                        "descriptors": [], "countries": [country], "pinned": False, "kind": "opaque"})
    return out


# ----------------------------------------------------------------------------- rendering

def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _date(rng: random.Random) -> str:
    d, m = rng.randint(1, 28), rng.randint(1, 12)
    return rng.choice((f"{m:02d}/{d:02d}", f"{d:02d}.{m:02d}", f"{d:02d}{m:02d}", f"{d:02d}/{m:02d}",
                       f"2025-{m:02d}-{d:02d}", f"{d:02d}{('JAN','FEB','MAR','APR','MAY','JUN','JUL','AUG','SEP','OCT','NOV','DEC')[m-1]}"))


def _ref(rng: random.Random) -> str:
    n = rng.randint(5, 12)
    if rng.random() < 0.5:
        return _digits(rng, n)
    return "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(n))


def _card(rng: random.Random) -> str:
    return rng.choice((_digits(rng, 4), "XXXX" + _digits(rng, 4), "*" + _digits(rng, 4), "X" + _digits(rng, 4)))


def _display(m: dict, rng: random.Random) -> str:
    text = m["name"]
    if m["descriptors"] and rng.random() < 0.65:
        text = rng.choice(m["descriptors"])
    elif m["descriptors"] and not text.isascii():
        ascii_forms = [d for d in m["descriptors"] if d.isascii()]
        if ascii_forms and rng.random() < 0.7:
            text = rng.choice(ascii_forms)
    if rng.random() < 0.8:
        text = text.upper()
    if rng.random() < 0.3:
        text = text.replace("'", "").replace("’", "")
    return text.strip()


def _store_number(rng: random.Random) -> str:
    return rng.choice((" #" + _digits(rng, 4), " " + _digits(rng, 5), " STORE " + _digits(rng, 3),
                       " #" + _digits(rng, 3), " T" + _digits(rng, 4), " 00" + _digits(rng, 3), " F" + _digits(rng, 3)))


def _location(rng: random.Random, country: str) -> str:
    _, _, _, _, cities, regions = COUNTRIES[country]
    text = rng.choice(cities)
    if regions and rng.random() < 0.6:
        text += " " + rng.choice(regions)
    return text


def card_descriptor(m: dict, rng: random.Random, country: str) -> str:
    """The merchant as a card network prints it: prefix, name, store number, truncation, city."""
    name = _display(m, rng)
    if m["kind"] != "brand" or not m["pinned"]:
        for prefix, prob in PROCESSOR_PREFIXES.get(country, ()):
            if prefix == "TST* " and m["code"] != "MEALS":
                continue
            if m["code"] in SMALL_MERCHANT_CODES and rng.random() < prob * 1.6:
                name = prefix + name
                break
    if rng.random() < 0.3:
        name += _store_number(rng)
    if len(name) > 22 and rng.random() < 0.55:
        name = name[: rng.choice((22, 23, 24, 25))].rstrip()
    if rng.random() < 0.55:
        pad = " " * rng.choice((1, 1, 2, 3)) if rng.random() < 0.7 else " " * max(1, 25 - len(name))
        name += pad + _location(rng, country)
    if rng.random() < 0.06:
        name += rng.choice(NOISE)
    return name


def bank_descriptor(m: dict, rng: random.Random, country: str) -> str:
    """The merchant wrapped in the bank's channel text (card purchase or direct debit)."""
    lang = COUNTRIES[country][3][0]
    if m["code"] in DIRECT_DEBIT_CODES and rng.random() < 0.6:
        wrappers = DIRECT_DEBIT_WRAPPERS.get(lang, DIRECT_DEBIT_WRAPPERS["en"])
        inner = _display(m, rng)
    else:
        wrappers = CARD_WRAPPERS.get(lang, CARD_WRAPPERS["en"])
        inner = card_descriptor(m, rng, country)
    text = rng.choice(wrappers).format(m=inner, d=_date(rng), c=_card(rng), r=_ref(rng))
    if rng.random() < 0.04:
        text += f" USD {rng.randint(3, 400)}.{_digits(rng, 2)} RATE 0.{_digits(rng, 4)}"
    return text


def _amount(rng: random.Random, short: str, country: str) -> str:
    median, sigma = AMOUNT_USD[short]
    _, fx, minor, *_ = COUNTRIES[country]
    value = max(0.5, median * math.exp(rng.gauss(0, sigma))) * fx
    quant = 10 ** -minor
    value = max(quant, round(value / quant) * quant)
    return f"{value:.{minor}f}"


def _clean_name(m: dict) -> str:
    name = m["name"]
    return name.title() if name.isupper() and name.isascii() else name


# ----------------------------------------------------------------------------- money in and suspense

TRANSFER_OUT = {
    "en": ("TRANSFER TO {p}", "ZELLE PAYMENT TO {p}", "ONLINE TRANSFER TO {p} REF {r}", "FASTER PAYMENT TO {p}",
           "VENMO *{P}", "CASH APP*{P}", "PAYPAL *{P}", "BANK TRANSFER {p}", "P2P {p}", "E-TRANSFER {p}", "WIRE OUT {p}"),
    "de": ("UEBERWEISUNG AN {p}", "ONLINE-UEBERWEISUNG {p} {r}", "ECHTZEITUEBERWEISUNG {p}", "PAYPAL *{P}"),
    "fr": ("VIREMENT A {p}", "VIR INST {p}", "VIREMENT EMIS {p} {r}", "PAYPAL *{P}", "LYDIA {p}"),
    "es": ("TRANSFERENCIA A {p}", "BIZUM A {p}", "TRANSF. {p} {r}", "PAYPAL *{P}"),
    "pt": ("PIX ENVIADO {p}", "TRANSFERENCIA {p}", "TED {p} {r}", "MB WAY {p}"),
    "it": ("BONIFICO A {p}", "SATISPAY {p}", "GIROCONTO {p}", "PAYPAL *{P}"),
    "nl": ("OVERBOEKING NAAR {p}", "TIKKIE {p}", "ONLINE BANKIEREN {p} {r}"),
    "pl": ("PRZELEW DO {p}", "BLIK PRZELEW {p}", "PRZELEW WYCHODZACY {p} {r}"),
    "sv": ("SWISH {p}", "OVERFORING {p}"), "no": ("VIPPS {p}", "OVERFORING {p}"), "da": ("MOBILEPAY {p}", "OVERFORSEL {p}"),
    "fi": ("TILISIIRTO {p}", "MOBILEPAY {p}"), "tr": ("HAVALE {p}", "EFT {p} {r}", "FAST {p}"),
    "vi": ("CHUYEN KHOAN {p}", "CK DEN {p} {r}", "MOMO {p}"), "id": ("TRSF E-BANKING DB {p}", "TRANSFER KE {p}", "BI-FAST {p}"),
    "hi": ("UPI/{p}/{r}", "IMPS {p} {r}", "NEFT DR {p}"), "ms": ("DUITNOW TRANSFER {p}", "IBG TRANSFER {p}"),
    "th": ("PROMPTPAY {p}", "โอนเงิน {p}"), "zh": ("转账 {p}", "TRANSFER {p}"), "ja": ("振込 {p}", "FURIKOMI {p}"), "ko": ("이체 {p}", "송금 {p}"),
}
ATM = ("ATM WITHDRAWAL {loc}", "ATM CASH WITHDRAWAL {r}", "CASH WITHDRAWAL {loc}", "GELDAUTOMAT {loc}", "BARGELDAUSZAHLUNG {r}",
       "RETRAIT DAB {loc}", "RETRAIT {d} {loc}", "RETIRO CAJERO {loc}", "RETIRO EFECTIVO {r}", "SAQUE {loc}", "SAQUE 24H {r}",
       "PRELIEVO BANCOMAT {loc}", "GELDOPNAME {loc}", "WYPLATA BANKOMAT {loc}", "VYBER Z BANKOMATU {loc}", "UTTAG {loc}",
       "KONTANTUTTAK {loc}", "NOSTO {loc}", "PARA CEKME {loc}", "RUT TIEN ATM {loc}", "TARIK TUNAI {loc}", "ATM WDL {r}",
       "CASH WDL {loc}", "SNYATIE NALICHNYKH {loc}", "ATM {loc} {r}")
OPAQUE = ("POS {r} {d}", "CHECK {n}", "CHQ {n}", "CHEQUE {n}", "DEBIT {r}", "ONLINE PAYMENT REF {r}", "PURCHASE {r}",
          "DEBIT CARD {c} {d}", "CARD TRANSACTION {r}", "PAYMENT {r}", "DD {r}", "TRF {r}", "MISC DEBIT {r}",
          "DEBIT ADJUSTMENT {r}", "SERVICE {r}", "{X}*{r}", "{X} {r}", "{X}", "ORDER {r}", "INV {r} PAYMENT",
          "LASTSCHRIFT {r}", "PRLV {r}", "RECIBO {r}", "PAGAMENTO {r}", "TRANSACTION {d} {r}")
CARD_PAYMENT_CREDIT = ("PAYMENT - THANK YOU", "PAYMENT THANK YOU", "AUTOPAY PAYMENT", "PAYMENT RECEIVED - THANK YOU",
                       "ONLINE PAYMENT THANK YOU", "ZAHLUNG DANKE", "PAIEMENT RECU MERCI", "PAGO RECIBIDO GRACIAS",
                       "INTERNAL TRANSFER", "TRANSFER FROM SAVINGS {c}", "OWN ACCOUNT TRANSFER {r}", "EIGENUEBERTRAG")
PAYIN = {
    "en": ("ACH CREDIT {co} PAYMENT", "{co} INV {n}", "DEPOSIT {co}", "FASTER PAYMENT FROM {co} REF INV{n}", "BACS CREDIT {co}",
           "WIRE IN {co}", "INCOMING WIRE {co} REF {r}", "DIRECT CREDIT {co} {n}", "TRANSFER FROM {co}", "MOBILE DEPOSIT",
           "REMOTE DEPOSIT CHECK {n}", "STRIPE PAYOUT", "STRIPE TRANSFER ST-{r}", "SHOPIFY PAYMENTS PAYOUT", "SQUARE INC DEP {r}",
           "PAYPAL TRANSFER {r}", "AMAZON PAYMENTS MKTPLACE {r}", "ETSY DEPOSIT", "CUSTOMER PAYMENT {co}", "RECEIVED FROM {co} INV {n}",
           "{co} REMITTANCE {n}", "E-TRANSFER FROM {co}", "SUMUP PAYOUT {r}", "ZETTLE PAYOUT", "ADYEN SETTLEMENT {r}", "CHECK DEPOSIT"),
    "de": ("GUTSCHRIFT {co} RE {n}", "SEPA GUTSCHRIFT {co} RECHNUNG {n}", "ZAHLUNGSEINGANG {co}", "UEBERWEISUNGSGUTSCHRIFT {co} {n}", "GUTSCHRIFT {co}"),
    "fr": ("VIREMENT RECU {co} FACT {n}", "VIR SEPA RECU {co}", "VIR DE {co} FACTURE {n}", "REMISE CB {r}"),
    "es": ("TRANSFERENCIA RECIBIDA {co}", "ABONO TRANSFERENCIA {co} FRA {n}", "INGRESO {co}", "COBRO FACTURA {n} {co}"),
    "pt": ("PIX RECEBIDO {co}", "TED RECEBIDA {co}", "TRANSFERENCIA RECEBIDA {co}", "RECEBIMENTO {co} NF {n}"),
    "it": ("BONIFICO DA {co} FATT {n}", "ACCREDITO BONIFICO {co}", "INCASSO {co} FATTURA {n}"),
    "nl": ("OVERBOEKING VAN {co} FACTUUR {n}", "BIJSCHRIJVING {co}", "ONTVANGEN {co} {n}"),
    "pl": ("PRZELEW PRZYCHODZACY {co} FV {n}", "WPLATA {co}", "UZNANIE {co}"),
    "sv": ("INBETALNING {co} FAKTURA {n}", "BANKGIRO INSATTNING {co}"), "no": ("INNBETALING {co} FAKTURA {n}",), "da": ("INDBETALING {co} FAKTURA {n}",),
    "fi": ("TILISIIRTO {co} LASKU {n}", "SUORITUS {co}"), "tr": ("GELEN HAVALE {co}", "GELEN EFT {co} FATURA {n}"),
    "vi": ("NHAN TIEN {co} TT HOA DON {n}", "CK DEN TU {co}"), "id": ("TRSF E-BANKING CR {co}", "TRANSFER MASUK {co} INV {n}"),
    "hi": ("NEFT CR {co} INV {n}", "IMPS CR {co}", "UPI CR {co} {r}", "RTGS CR {co}"), "ja": ("振込入金 {co}", "FURIKOMI {co}"),
}
INTEREST = ("INTEREST PAYMENT", "INTEREST CREDIT", "CREDIT INTEREST", "INTEREST EARNED", "INTEREST PAID", "SAVINGS INTEREST",
            "MONTHLY INTEREST", "GROSS INTEREST", "INTEREST {d}", "ZINSGUTSCHRIFT", "HABENZINSEN", "ZINSEN", "GUTHABENZINSEN",
            "INTERETS CREDITEURS", "INTERETS", "REMUNERATION COMPTE", "INTERESES", "ABONO INTERESES", "LIQUIDACION INTERESES",
            "JUROS", "RENDIMENTO POUPANCA", "JUROS CREDITADOS", "INTERESSI CREDITORI", "INTERESSI ATTIVI", "RENTE",
            "RENTEBIJSCHRIJVING", "ODSETKI", "KAPITALIZACJA ODSETEK", "UROKY", "RANTA", "RENTER", "KORKO", "FAIZ",
            "MEVDUAT FAIZI", "BUNGA", "BUNGA TABUNGAN", "JASA GIRO", "LAI TIEN GUI", "TRA LAI", "利息", "受取利息", "이자",
            "ดอกเบี้ย", "ПРОЦЕНТЫ", "NACHISLENIE PROTSENTOV", "TOKOI", "CREDIT INT", "INT PAID", "DIVIDEND INTEREST")
REFUND_WORDS = ("REFUND", "REFUND", "RETURN", "CREDIT VOUCHER", "CREDIT", "ERSTATTUNG", "GUTSCHRIFT", "REMBOURSEMENT",
                "AVOIR", "DEVOLUCION", "REEMBOLSO", "ESTORNO", "RIMBORSO", "STORNO", "TERUGBETALING", "ZWROT", "RETUR",
                "HYVITYS", "IADE", "HOAN TIEN", "返金", "退款", "환불", "ВОЗВРАТ", "REVERSAL", "CHARGEBACK CREDIT")


def _company(rng: random.Random, lang: str) -> str:
    roll = rng.random()
    if roll < 0.45:
        base = _person(rng, lang)[1]
    elif roll < 0.75:
        base = f"{rng.choice(FANCY)} {rng.choice(('TRADING', 'DESIGN', 'FOODS', 'LOGISTICS', 'MEDIA', 'STUDIO', 'TECH', 'HOMES', 'RETAIL', 'SUPPLY'))}"
    else:
        given, sur = _person(rng, lang)
        return f"{given} {sur}"
    return f"{base} {rng.choice(COMPANY_SUFFIX.get(lang, COMPANY_SUFFIX['en']))}"


def _fill(template: str, rng: random.Random, country: str, **extra: str) -> str:
    values = {"d": _date(rng), "r": _ref(rng), "c": _card(rng), "n": _digits(rng, rng.randint(3, 6)),
              "loc": _location(rng, country), "X": "".join(rng.choice("ABCDEFGHKLMNPRSTVWXZ") for _ in range(rng.randint(2, 5)))}
    values.update(extra)
    return re.sub(r"\{(\w+)\}", lambda mt: values[mt.group(1)], template)


# ----------------------------------------------------------------------------- lines

def _event(i: int, rng: random.Random, *, short: str, source: str, direction: str, description: str,
           counterparty: str | None, mcc: str | None, country: str, merchant_id: str) -> dict:
    currency = COUNTRIES[country][0]
    month, day = rng.randint(1, 12), rng.randint(1, 28)
    return {"schema_version": 1, "event_id": f"corpus-{i:07d}", "organization_id": ORGS[i % len(ORGS)],
            "source": source, "occurred_at": f"2025-{month:02d}-{day:02d}T{rng.randint(6, 22):02d}:{rng.randint(0, 59):02d}:00Z",
            "amount": _amount(rng, short, country), "currency": currency, "direction": direction,
            "description": description[:500], "counterparty": counterparty, "mcc": mcc,
            "expected_smart_code": SHORT_CODES[short], "merchant_id": merchant_id, "country": country}


def expense_lines(m: dict, n: int, rng: random.Random, pool: dict[str, list[str]]) -> list[tuple]:
    """(short, source, direction, description, counterparty, mcc, country) for one merchant."""
    out = []
    for _ in range(n):
        country = rng.choice(m["countries"])
        source = "card_feed" if (m["kind"] == "opaque" or rng.random() < 0.55) else "bank_feed"
        desc = card_descriptor(m, rng, country) if source == "card_feed" else bank_descriptor(m, rng, country)
        mcc = m["mcc"] or (rng.choice(pool[m["code"]]) if pool.get(m["code"]) else None)
        keep_mcc = 0.95 if m["kind"] == "opaque" else (0.9 if source == "card_feed" else 0.12)
        mcc = mcc if rng.random() < keep_mcc else None
        cp_prob = 0.45 if source == "bank_feed" else 0.12
        cp = _clean_name(m) if rng.random() < cp_prob else None
        out.append((m["code"], source, "debit", desc, cp, mcc, country))
    return out


def refund_lines(m: dict, n: int, rng: random.Random) -> list[tuple]:
    out = []
    for _ in range(n):
        country = rng.choice(m["countries"])
        source = "card_feed" if rng.random() < 0.55 else "bank_feed"
        desc = card_descriptor(m, rng, country)
        if source == "bank_feed" or rng.random() < 0.5:
            word = rng.choice(REFUND_WORDS)
            desc = f"{word} {desc}" if rng.random() < 0.5 else f"{desc} {word}"
        mcc = m["mcc"] if (source == "card_feed" and rng.random() < 0.8) else None
        out.append(("REFUND", source, "credit", desc, None, mcc, country))
    return out


def other_lines(rng: random.Random, n_suspense: int, n_payin: int, n_interest: int) -> list[tuple[str, tuple]]:
    """(merchant_id, line) for suspense, customer receipts and interest."""
    out = []
    countries = sorted(COUNTRIES)
    for _ in range(n_suspense):
        country = rng.choice(countries)
        lang = COUNTRIES[country][3][0]
        roll = rng.random()
        if roll < 0.4:
            given, sur = _person(rng, lang)
            person = f"{given} {sur}" if rng.random() < 0.7 else f"{given[0]} {sur}"
            tmpl = rng.choice(TRANSFER_OUT.get(lang, TRANSFER_OUT["en"]))
            desc = _fill(tmpl, rng, country, p=person, P=(given + sur).replace(" ", "") + (_digits(rng, 2) if rng.random() < 0.4 else ""))
            line = ("SUSPENSE", "bank_feed" if rng.random() < 0.8 else "card_feed", "debit", desc, person if rng.random() < 0.4 else None, None, country)
            mid = _mid("transfer", person)
        elif roll < 0.65:
            tmpl = rng.choice(ATM)
            card = rng.random() < 0.4
            line = ("SUSPENSE", "card_feed" if card else "bank_feed", "debit", _fill(tmpl, rng, country), None, "6011" if card and rng.random() < 0.8 else None, country)
            mid = _mid("atm", tmpl, country)
        elif roll < 0.9:
            tmpl = rng.choice(OPAQUE)
            line = ("SUSPENSE", "bank_feed" if rng.random() < 0.7 else "card_feed", "debit", _fill(tmpl, rng, country), None, None, country)
            mid = _mid("opaque", tmpl, str(rng.randint(0, 40)))
        else:
            tmpl = rng.choice(CARD_PAYMENT_CREDIT)
            line = ("SUSPENSE", "card_feed" if rng.random() < 0.6 else "bank_feed", "credit", _fill(tmpl, rng, country), None, None, country)
            mid = _mid("cardpay", tmpl)
        out.append((mid, line))
    for _ in range(n_payin):
        country = rng.choice(countries)
        lang = COUNTRIES[country][3][0]
        co = _company(rng, lang)
        tmpl = rng.choice(PAYIN.get(lang, PAYIN["en"]) + PAYIN["en"][:6])
        desc = _fill(tmpl, rng, country, co=co)
        out.append((_mid("payin", co if "{co}" in tmpl else tmpl), ("PAYIN", "bank_feed", "credit", desc, co if rng.random() < 0.5 else None, None, country)))
    for _ in range(n_interest):
        country = rng.choice(countries)
        tmpl = rng.choice(INTEREST)
        desc = _fill(tmpl, rng, country)
        if rng.random() < 0.3:
            desc += " " + rng.choice((_date(rng), _card(rng), "ACCT " + _digits(rng, 4), "Q" + str(rng.randint(1, 4))))
        out.append((_mid("interest", tmpl), ("INTEREST", "bank_feed", "credit", desc, None, None, country)))
    return out


def build(seed: int) -> tuple[list[dict], list[dict]]:
    rng = random.Random(seed)
    brands = parse_brands(rng)
    pool = _mcc_pool(brands)
    merchants = brands + synth_merchants(rng, per_code_country=8) + opaque_merchants(rng, per_code=60)
    rows: list[tuple[str, bool, tuple]] = []
    for m in merchants:
        n = rng.randint(10, 16) if m["pinned"] else (rng.randint(3, 6) if m["kind"] == "brand" else rng.randint(2, 5))
        for line in expense_lines(m, n, rng, pool):
            rows.append((m["id"], m["pinned"], line))
        if m["kind"] != "opaque" and rng.random() < 0.18:
            for line in refund_lines(m, rng.randint(1, 2), rng):
                rows.append((m["id"], m["pinned"], line))
    for mid, line in other_lines(rng, n_suspense=5500, n_payin=3500, n_interest=1000):
        rows.append((mid, False, line))
    rng.shuffle(rows)
    train, heldout = [], []
    for i, (mid, pinned, (short, source, direction, desc, cp, mcc, country)) in enumerate(rows):
        event = _event(i, rng, short=short, source=source, direction=direction, description=desc,
                       counterparty=cp, mcc=mcc, country=country, merchant_id=mid)
        held = not pinned and int(mid, 16) % 100 < HELDOUT_PERCENT
        (heldout if held else train).append(event)
    return train, heldout


def write_jsonl_gz(path: Path, events: list[dict]) -> str:
    """Byte-stable gzip (mtime 0, no filename) so the same seed gives the same file."""
    raw = "".join(json.dumps(e, ensure_ascii=False, sort_keys=True) + "\n" for e in events).encode()
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(raw)
    path.write_bytes(buf.getvalue())
    return hashlib.sha256(buf.getvalue()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args(argv)
    train, heldout = build(args.seed)
    manifest = {"seed": args.seed, "heldout_percent": HELDOUT_PERCENT, "files": {}}
    for name, events in (("corpus_train.jsonl.gz", train), ("corpus_heldout.jsonl.gz", heldout)):
        digest = write_jsonl_gz(args.out / name, events)
        manifest["files"][name] = {
            "lines": len(events), "sha256": digest,
            "merchants": len({e["merchant_id"] for e in events}),
            "countries": len({e["country"] for e in events}),
            "per_code": dict(sorted(Counter(e["expected_smart_code"] for e in events).items())),
        }
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({k: {"lines": v["lines"], "merchants": v["merchants"]} for k, v in manifest["files"].items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
