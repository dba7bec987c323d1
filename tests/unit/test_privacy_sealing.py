"""Sealing of personal text (pipeline/domain/privacy.py, pipeline/ledger/privacy.py), without a
database: v2 tokens round-trip and refuse another key or a tampered token, v1 tokens (written by
the first construction) still read, an entry's and a review payload's personal fields are sealed
and nothing else, and a reveal shows ``[erased]`` when the key is gone."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import uuid
from datetime import UTC, datetime
from decimal import Decimal

from pipeline.domain import privacy as domain
from pipeline.domain.entries import JournalEntry, JournalLine
from pipeline.ledger import privacy

ORG = str(uuid.UUID(int=7))
FEES = "HERA.FIN.EXP.PROFESSIONAL.FEES.v1"
NAME = "Jane Q. Doe"


def v1_token(key: bytes, subject: str, text: str, nonce: bytes) -> str:
    """A token as the first construction wrote it (HMAC-SHA256 keystream and tag)."""
    def derived(purpose: bytes) -> bytes:
        return hmac.new(key, b"hera-privacy\x00" + purpose, hashlib.sha256).digest()

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    plain = text.encode()
    stream = b"".join(hmac.new(derived(b"enc"), nonce + i.to_bytes(8, "big"), hashlib.sha256).digest()
                      for i in range(len(plain) // 32 + 1))
    cipher = bytes(a ^ b for a, b in zip(plain, stream, strict=False))
    tag = hmac.new(derived(b"mac"), subject.encode() + nonce + cipher, hashlib.sha256).digest()[:16]
    return f"pii:v1:{subject}:{b64(nonce)}:{b64(cipher)}:{b64(tag)}"


def test_tokens_round_trip_only_with_their_key() -> None:
    key, subject = os.urandom(32), domain.subject_id(b"pepper", ORG, NAME)
    for text in ("", NAME, "ünïcødé " * 40):
        token = domain.seal(key, subject, text, nonce=os.urandom(16))
        assert token.startswith("pii:v2:") and domain.sealed_subject(token) == subject
        assert domain.unseal(key, token) == text and domain.unseal(os.urandom(32), token) is None
    token = domain.seal(key, subject, NAME, nonce=os.urandom(16))
    assert NAME not in token and domain.unseal(None, token) is None
    body = token.rsplit(":", 1)[1]
    flipped = token[:-len(body)] + ("B" if body[0] == "A" else "A") + body[1:]
    assert domain.unseal(key, flipped) is None
    old = v1_token(key, subject, NAME, os.urandom(16))
    assert domain.sealed_subject(old) == subject and domain.unseal(key, old) == NAME


def entry() -> JournalEntry:
    amount = Decimal("450.00")
    return JournalEntry(ORG, "e-1", FEES, datetime(2026, 4, 2, tzinfo=UTC), "EUR",
                        (JournalLine("6650", "DR", amount, "EUR", FEES, f"advice from {NAME}"),
                         JournalLine("1010", "CR", amount, "EUR", FEES)),
                        "bank_feed", reference="INV 7", description=f"SEPA {NAME}", counterparty=NAME)


def test_an_entry_is_sealed_in_its_personal_fields_only_and_revealed_with_the_key() -> None:
    pepper = b"p" * 32
    pair = privacy._subject_of(pepper, ORG, NAME)
    assert pair is not None
    keys = {pair: os.urandom(32)}
    sealed = privacy.sealed_entry(entry(), pair, privacy._Seal(keys, 8))
    texts = (sealed.counterparty, sealed.description, sealed.lines[0].description)
    assert all(domain.sealed_subject(t) == pair[1] for t in texts) and sealed.lines[1].description is None
    assert sealed.reference == "INV 7"                          # not personal text: kept as it is
    assert sealed.total == entry().total and [ln.account for ln in sealed.lines] == ["6650", "1010"]
    rev = privacy.Revealer(keys)
    assert [rev.text(ORG, t) for t in texts] == [NAME, f"SEPA {NAME}", f"advice from {NAME}"]
    gone = privacy.Revealer({})
    assert [gone.text(ORG, t) for t in texts] == [privacy.ERASED] * 3 and gone.erased(ORG, texts[0])
    assert gone.text(ORG, "plain text") == "plain text"      # never sealed: shown as it is


def test_a_review_payload_is_sealed_in_event_and_entry() -> None:
    pepper = b"p" * 32
    payload = {"event": {"counterparty": NAME, "description": f"SEPA {NAME}", "amount": "450.00",
                         "lines": [{"description": f"line {NAME}", "amount": "450.00"}]},
               "entry": {"counterparty": NAME, "description": f"SEPA {NAME}",
                         "lines": [{"account": "6650", "description": f"advice from {NAME}"}]},
               "classification": {"smart_code": FEES, "explanation": {"unknown_tokens": ["jane", "doe"]}}}
    pair = privacy.payload_subject(pepper, ORG, payload)
    assert pair is not None
    keys = {pair: os.urandom(32)}
    seal = privacy._Seal(keys, 8)
    sealed = privacy._map_payload(privacy._explanation_as_text(payload), lambda t: seal(pair, t))
    assert "doe" not in repr(sealed).lower() and sealed["event"]["amount"] == "450.00"
    assert len(privacy.payload_values(sealed)) == 7          # the classifier's explanation quotes words too
    assert privacy.Revealer(keys).payload(ORG, sealed) == payload
    assert privacy.Revealer({}).payload(ORG, sealed)["classification"]["explanation"] is None   # erased
    assert privacy.payload_subject(pepper, ORG, {"event": {"amount": "1"}}) is None   # no counterparty: as is
