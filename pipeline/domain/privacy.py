"""Pseudonymisation of personal text with a key per data subject, so that erasing a subject is
destroying one key (crypto-shredding): the ledger's rows, amounts and audit chain stay exactly as
they were, and the sealed text can no longer be read by anyone.

* ``subject_id(pepper, org, name)``: the subject's stable, non-reversible id within an
  organisation (HMAC of the normalised name); the name itself is never stored to find the key.
* ``seal(key, subject, text)``: ``pii:v2:<subject>:<nonce|tag|ciphertext>`` (base64url);
  a keyed-BLAKE2b keystream (CTR over a random 16-byte nonce) and a keyed-BLAKE2b tag over the
  subject, nonce and ciphertext (encrypt-then-MAC, separate keys derived once per subject by
  ``Sealer``). Only the standard library, so nothing to install; the construction is a PRF in
  counter mode, which is the whole of what crypto-shredding needs: without the key the ciphertext
  says nothing but its length. ``pii:v1:`` tokens (HMAC-SHA256 in place of BLAKE2b, several times
  slower on the posting path) are still read.
* ``unseal(key, token)``: the text, or None if the token is not sealed with this key.

Pure: keys and randomness come in as arguments (``nonce``), nothing is read from a clock or the
database. ``pipeline/ledger/privacy.py`` keeps the keys (table ``privacy_subject_keys``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import unicodedata
from functools import lru_cache

PREFIX = "pii:v2:"
PREFIX_V1 = "pii:v1:"
PREFIXES = (PREFIX, PREFIX_V1)
NONCE_BYTES = 16
KEY_BYTES = 32
TAG_BYTES = 16
SUBJECT_HEX_CHARS = 32
SUBJECTS_CACHED_MAX = 65_536


def normalised_name(name: str) -> str:
    """The form two spellings of one subject share: NFKC, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


@lru_cache(maxsize=SUBJECTS_CACHED_MAX)   # a batch names the same counterparties many times
def subject_id(pepper: bytes, org: str, name: str) -> str:
    """The subject's id in ``org``: hex HMAC of the normalised name (not reversible without the pepper)."""
    message = f"{str(org).lower()}\x00{normalised_name(name)}".encode()
    return hmac.new(pepper, message, hashlib.sha256).hexdigest()[:SUBJECT_HEX_CHARS]


def _derived(key: bytes, purpose: bytes) -> bytes:
    return hmac.new(key, b"hera-privacy\x00" + purpose, hashlib.sha256).digest()


def _keystream(key: bytes, nonce: bytes, length: int) -> bytes:
    stream = bytearray()
    counter = 0
    while len(stream) < length:
        stream += hmac.new(key, nonce + counter.to_bytes(8, "big"), hashlib.sha256).digest()
        counter += 1
    return bytes(stream[:length])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sealer:
    """Seals texts of one subject: the derived keys computed once (``seal`` is on the posting path)."""

    __slots__ = ("_enc", "_mac", "subject")

    def __init__(self, key: bytes, subject: str) -> None:
        if len(key) < KEY_BYTES:
            raise ValueError("a subject key has 32 bytes")
        self.subject = subject
        self._enc, self._mac = _derived(key, b"enc-v2"), _derived(key, b"mac-v2")

    def seal(self, text: str, *, nonce: bytes) -> str:
        """``text`` sealed (``nonce``: 16 fresh random bytes per call)."""
        if len(nonce) != NONCE_BYTES:
            raise ValueError("seal needs a 16-byte nonce")
        plain = text.encode("utf-8")
        cipher = _xor(plain, _blake_stream(self._enc, nonce, len(plain)))
        tag = hashlib.blake2b(self.subject.encode() + nonce + cipher, key=self._mac, digest_size=TAG_BYTES).digest()
        return f"{PREFIX}{self.subject}:{_b64(nonce + tag + cipher)}"

    def open(self, sealed: bytes) -> str | None:
        nonce, tag, cipher = sealed[:NONCE_BYTES], sealed[NONCE_BYTES:NONCE_BYTES + TAG_BYTES], \
            sealed[NONCE_BYTES + TAG_BYTES:]
        expected = hashlib.blake2b(self.subject.encode() + nonce + cipher, key=self._mac,
                                   digest_size=TAG_BYTES).digest()
        if len(nonce) != NONCE_BYTES or not hmac.compare_digest(expected, tag):
            return None
        return _xor(cipher, _blake_stream(self._enc, nonce, len(cipher))).decode("utf-8", errors="replace")


def _blake_stream(key: bytes, nonce: bytes, length: int) -> bytes:
    blocks = [hashlib.blake2b(nonce + counter.to_bytes(8, "big"), key=key).digest()
              for counter in range(-(-length // 64))]
    return b"".join(blocks)[:length]


def _xor(data: bytes, stream: bytes) -> bytes:
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")).to_bytes(len(data), "big")


def seal(key: bytes, subject: str, text: str, *, nonce: bytes) -> str:
    """``text`` sealed with the subject's ``key`` (``nonce``: 16 fresh random bytes per call)."""
    return Sealer(key, subject).seal(text, nonce=nonce)


def sealed_subject(token: object) -> str | None:
    """The subject id a sealed token belongs to (None: not a sealed token)."""
    if not isinstance(token, str) or not token.startswith(PREFIXES):
        return None
    parts = token[len(PREFIX):].split(":")
    return parts[0] if len(parts) == (2 if token.startswith(PREFIX) else 4) else None


def unseal(key: bytes | None, token: str) -> str | None:
    """The sealed text, or None when ``key`` is gone (erased) or is not this token's key."""
    subject = sealed_subject(token)
    if subject is None or key is None or len(key) < KEY_BYTES:
        return None
    try:
        parts = [_unb64(p) for p in token[len(PREFIX):].split(":")[1:]]
    except ValueError:
        return None
    if token.startswith(PREFIX):
        return Sealer(key, subject).open(parts[0])
    return _open_v1(key, subject, *parts)


def _open_v1(key: bytes, subject: str, nonce: bytes, cipher: bytes, tag: bytes) -> str | None:
    expected = hmac.new(_derived(key, b"mac"), subject.encode() + nonce + cipher, hashlib.sha256).digest()[:TAG_BYTES]
    if not hmac.compare_digest(expected, tag):
        return None
    plain = bytes(a ^ b for a, b in zip(cipher, _keystream(_derived(key, b"enc"), nonce, len(cipher)), strict=True))
    return plain.decode("utf-8", errors="replace")
