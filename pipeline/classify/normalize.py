"""Descriptor normalisation: from a raw bank/card feed text to tokens a model can generalise on.

Feed descriptors carry a lot of noise around a little signal: ``SQ *BLUE BOTTLE COFFEE #12
OAKLAND CA``. This module folds case and accents (Vietnamese, Polish, Turkish … map to plain
Latin; CJK, Thai, Arabic and Hangul are kept), splits payment-processor prefixes
(``SQ *``, ``PAYPAL *``, ``VNPAY*``) from the merchant, and drops store numbers, dates, masked
card numbers and reference codes, which identify a location or a payment but never a category.
A number that opens the descriptor is kept: it is the merchant's name ("7-ELEVEN", "99 SPEED MART").

``merchant_key`` is the identity used by per-organisation memory: the first meaningful
tokens of the merchant name, stable across store numbers, dates and processor prefixes.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import NamedTuple

# Payment facilitators whose name precedes the real merchant ("SQ *JOES CAFE").
PROCESSORS = frozenset(
    """sq sqr tst toast paypal pypl pp vnpay sumup sum ztl iz izettle zettle sp cko stripe payu
    razorpay rzp midtrans xendit omise 2co fs fsp dlo dlocal paddle mollie adyen worldpay wpy
    sagepay clover lightspeed yoco payfast paystack flw mp mercadopago mercpago pagseguro pag
    ebanx nyx bluesnap ccbill payoneer skrill gocardless gc airwallex wise revolut pos ecom
    epay payzen sumupecom shopify shp zip afterpay klarna clearpay affirm sezzle momo zalopay
    onepay alipay wechat wxpay tenpay linepay gcash paymaya grabpay ovo dana gopay truemoney
    payme ipay88 molpay billdesk ccavenue paytm phonepe upi shopeepay spay airpay boost tng tngd
    touchngo 2c2p promptpay duitnow paynow vietqr napas doku nicepay paymongo dragonpay maya fomopay
    hitpay razer senangpay billplz kpay kbank scbeasy linemanpay rabbitlinepay satispay merpago tyro
    zlr clv ccv vnpayqr momopay zlp viettelpay vtpay payoo smartpay""".split()
)
# Words that describe the payment channel, not the merchant; skipped in the merchant key.
CHANNEL_WORDS = frozenset(
    """pos purchase purchases card debit credit visa mastercard mc maestro amex contactless ctls
    chip pin checkcard check cheque authorized authorised auth on at in of to from the a ach
    payment pymt pmt paid pay bill dd direct sepa lastschrift kartenzahlung girocard ec cb
    carte paiement prlv compra tarj tarjeta pago recibo adeudo pagamento addebito sdd bea
    betaalautomaat incasso platnosc karta zakup transaction txn trx ref nr no id store shop
    online web www com net org co uk de fr es it nl au ca us inc ltd llc gmbh sa sas sarl srl
    bv ag plc pty nv oy ab as ug kg sl spa purch tran fee en de del la le el da do des du di par chez
    tarj achat acquisto pas betaalpas przy uzyciu karty transakcja platba kartou nakup kortkop kortkob
    varekjop dankort kob korttiosto osto kart ile odeme harcama thanh toan the qr tt trsf banking qris
    karte elo compras deb dr cr ppd autopay preauthorized standing order mandat kd dauerauftrag
    folgelastschrift uberweisung ueberweisung rechnung prelevement vir fact domiciliado transferencia
    debito automatico directo conta boleto diretto bonifico europese machtiging polecenie zaplaty
    przelew fv zlecenie stale autogiro faktura bankgiro avtalegiro efaktura betalingsservice bs lasku
    suoraveloitus otomatik fatura odemesi autodebet pembayaran hoa don ma kh ref pending help gpay
    google apple contactless pago pagamento paiement carte compra recibo adeudo addebito incasso
    lastschrift giro""".split()
)
_SPACE_SCRIPTS_START = 0x2E80  # CJK radicals onward: kana, CJK, Hangul — no word spaces
_THAI = (0x0E00, 0x0E7F)

# A leading number is the merchant's name ("7-ELEVEN", "99 SPEED MART", "55688 TAXI"), not a store
# number, when it opens the descriptor and letters follow (after spaces or a hyphen; not "12/03").
_LEADING_NUMBER_RE = re.compile(r"^\s*(\d{1,5})(?=[\s\-&+]*[^\W\d_])")
_STAR_RE = re.compile(r"^\s*([^\s*]{1,12}(?: [^\s*]{1,8})?)\s?\*\s*")
_TOKEN_RE = re.compile(r"\w+(?:&\w+)*")
_APOSTROPHES = str.maketrans({"'": None, "’": None, "`": None, "´": None, "_": " "})


class Descriptor(NamedTuple):
    """A normalised descriptor: merchant tokens, the processor prefix if any, and noise flags."""

    tokens: tuple[str, ...]
    prefix: str | None       # text before the first '*' ("sq", "paypal", "uber")
    processor: bool          # the prefix is a known payment facilitator
    had_number: bool         # store numbers / references were dropped


def fold(text: str) -> str:
    """Casefold and strip accents from Latin/Greek/Cyrillic; keep other scripts intact."""
    text = text.translate(_APOSTROPHES)
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return unicodedata.normalize("NFC", stripped).lower().replace("ß", "ss").replace("ı", "i")


def is_unspaced_script(token: str) -> bool:
    """True for scripts written without spaces between words (CJK, kana, Hangul, Thai)."""
    code = ord(token[0])
    return code >= _SPACE_SCRIPTS_START or _THAI[0] <= code <= _THAI[1]


@lru_cache(maxsize=100_000)
def _clean(token: str) -> str:
    """'' for numbers, references and masks; words keep their letters ("bookkeeper360" → "bookkeeper")."""
    digits = sum(ch.isdigit() for ch in token)
    if digits == 0:
        return "" if len(token) >= 3 and set(token) <= {"x", "*"} else token
    letters = len(token) - digits
    if letters >= 4 and letters >= 2 * digits:
        # the letters, as a token again: no "&" left at an end or doubled where digits were ("0&aaa")
        parts = [p for p in "".join(ch for ch in token if not ch.isdigit()).split("&") if p]
        if parts:
            parts[0] = parts[0].lstrip("x")
        return "&".join(p for p in parts if p)
    if digits == len(token) or digits >= 3 or (digits >= 2 and len(token) >= 4):
        return ""
    return token


def normalize(text: str | None) -> Descriptor:
    """Tokens of a descriptor with processor prefix split off and numbers dropped."""
    if not text:
        return Descriptor((), None, False, False)
    folded = fold(text)
    prefix = None
    match = _STAR_RE.match(folded)
    if match:
        prefix = match.group(1).strip().replace(" ", "")
        folded = folded[match.end():]
    raw = _TOKEN_RE.findall(folded.replace("*", " "))
    cleaned = [_clean(tok) for tok in raw]
    lead = _LEADING_NUMBER_RE.match(folded)
    if lead and raw and raw[0] == lead.group(1):
        cleaned[0] = raw[0]                       # a digit name is kept ("7", "99", "55688")
    tokens = tuple(tok for tok in cleaned if tok)
    return Descriptor(tokens, prefix, prefix in PROCESSORS, cleaned != raw)


def merchant_tokens(desc: Descriptor) -> tuple[str, ...]:
    """The merchant part: the prefix when it is a merchant ("uber *trip"), minus channel words."""
    head = () if desc.prefix is None or desc.processor else (desc.prefix,)
    return tuple(t for t in (*head, *desc.tokens) if t not in CHANNEL_WORDS and t not in PROCESSORS and len(t) > 1)


def first_merchant_token(desc: Descriptor) -> str | None:
    """The first token of ``merchant_tokens`` without building the tuple (hot path)."""
    if desc.prefix is not None and not desc.processor and desc.prefix not in CHANNEL_WORDS and len(desc.prefix) > 1:
        return desc.prefix
    for t in desc.tokens:
        if t not in CHANNEL_WORDS and t not in PROCESSORS and len(t) > 1:
            return t
    return None


def merchant_key(description: str | None, counterparty: str | None = None, *, width: int = 2) -> str:
    """Stable identity of the merchant/counterparty for per-organisation memory ('' if none)."""
    if counterparty:
        tokens = merchant_tokens(normalize(counterparty))
        if tokens:
            return "cp:" + " ".join(tokens[:3])
    tokens = merchant_tokens(normalize(description))
    return "d:" + " ".join(tokens[:width]) if tokens else ""
