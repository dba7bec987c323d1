"""Per-organisation learning from reviewer decisions: counterparty memory and org rules.

Every reviewer decision (approve = the suggested code was right; correct = another code) is
evidence about the *merchant keys* of that organisation: the normalised counterparty
(``cp:blue fox studio``) and the first two merchant tokens of the descriptor (``d:blue bottle``;
one-letter and digit tokens count: ``d:big c``, ``d:7 eleven``).
Keys are made after payment-gateway prefixes (``SQ *``, ``VNPAY*``, ``SHOPEEPAY``), channel words
and place words (``places.py``: a key is never a city) are stripped. There is no key made of the
first token alone: "BANGKOK FUEL SHACK" and "BANGKOK BANK" must not share what was learnt.

Confidence is a posterior, never a constant: for the key's most frequent code,

    confidence = (n_top + s · m) / (n + s)

with ``n`` decisions, ``n_top`` of them for the top code, prior strength ``s`` and prior mean
``m`` = how often this organisation's decisions agree with the key's previous majority,
Laplace-smoothed towards ``CONSISTENCY_PRIOR`` (measured, per organisation). A key needs at
least ``MIN_DECISIONS`` consistent decisions before its confidence may reach an auto-post
threshold: with one, it is capped at ``HINT_CONFIDENCE_MAX`` and acts as a *hint*: the classifier
still asks the model, and posts the model's answer only if it agrees with the hint.

A key whose last ``PROMOTE_AFTER`` decisions agree (and ≥ 90 % overall) becomes an *org rule*
(``method="org_rule"``). A decision that contradicts the key the lookup would have used (the key
actually used for the suggestion) demotes that key at once and halves the old code's weight, so
the next lines go to review until the evidence is consistent again.

The state is plain dicts and numbers: ``to_dict`` / ``from_dict`` round-trip through JSON (for a
PostgreSQL row or a Faust table).

Personal data (SECURITY.md §7): given a ``pepper`` (the worker passes one derived from the audit key),
keys are kept as keyed pseudonyms, ``p:`` + an HMAC of the organisation and the key, never as the
counterparty's or descriptor's words. Lookups are exact matches on a key, so a pseudonym learns and
finds exactly what the clear key did. A state loaded with clear keys (written before) is re-keyed on
load. Erasing a subject (``hera privacy erase``) also deletes the keys ``subject_memory_keys`` names:
what was learnt about that counterparty alone.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from functools import lru_cache

from pipeline.classify.codes import SMART_CODE_RE, allowed_codes, enum_value
from pipeline.classify.normalize import CHANNEL_WORDS, PROCESSORS, normalize
from pipeline.classify.places import PLACE_WORDS
from pipeline.classify.types import Classification
from pipeline.domain.errors import HeraError

STATE_VERSION = 1
PROMOTE_AFTER = 3
PROMOTE_SHARE = 0.9
PRIOR_STRENGTH = 1.0
CONSISTENCY_PRIOR = 0.95        # before an org has history: merchants mostly keep their category
CONSISTENCY_PRIOR_WEIGHT = 20.0
MIN_DECISIONS = 2               # consistent decisions before a key may auto-post
HINT_CONFIDENCE_MAX = 0.8       # below every auto-post threshold (≥ 0.85)
ENTRIES_PER_ORG_MAX = 200_000
ALTERNATIVES_MAX = 3
PSEUDONYM_PREFIX = "p:"
PSEUDONYM_HEX_CHARS = 32
PSEUDONYMS_CACHED_MAX = 65_536
KEY_TOKENS_CACHED_MAX = 20_000  # descriptors and counterparty names: feeds repeat them, every lookup reads them


class MemoryError_(HeraError, ValueError):
    """Malformed memory state passed to ``from_dict``."""


@dataclass
class _Entry:
    counts: dict[str, float] = field(default_factory=dict)
    streak_code: str | None = None
    streak: int = 0
    rule: bool = False
    seq: int = 0

    @property
    def n(self) -> float:
        return sum(self.counts.values())

    def top(self) -> tuple[str | None, float]:
        if not self.counts:
            return None, 0.0
        code = max(sorted(self.counts), key=lambda c: self.counts[c])
        return code, self.counts[code]


@dataclass
class _OrgState:
    entries: dict[str, _Entry] = field(default_factory=dict)
    agree: int = 0
    disagree: int = 0
    seq: int = 0

    def consistency(self) -> float:
        return ((self.agree + CONSISTENCY_PRIOR * CONSISTENCY_PRIOR_WEIGHT)
                / (self.agree + self.disagree + CONSISTENCY_PRIOR_WEIGHT))


@lru_cache(maxsize=KEY_TOKENS_CACHED_MAX)
def _key_tokens(text: str | None) -> tuple[str, ...]:
    """Merchant tokens without gateway prefixes, channel words and place words (unless only places remain).

    Unlike the model's merchant tokens, one-character tokens stay: they are part of a name
    ("BIG C" and "BIG W" are different merchants; "7-ELEVEN" is "7 eleven"), and dropping them
    would turn the key into the first token alone.
    """
    desc = normalize(text)
    head = () if desc.prefix is None or desc.processor else (desc.prefix,)
    tokens = tuple(t for t in (*head, *desc.tokens) if t not in CHANNEL_WORDS and t not in PROCESSORS)
    kept = tuple(t for t in tokens if t not in PLACE_WORDS)
    return kept or tokens


def memory_keys(event: object) -> list[str]:
    """Keys from most to least specific: counterparty, first two merchant tokens."""
    keys = []
    cp = counterparty_key(getattr(event, "counterparty", None))
    if cp is not None:
        keys.append(cp)
    tokens = _key_tokens(getattr(event, "description", None))
    if tokens:
        keys.append("d:" + " ".join(tokens[:2]))
    return keys


def counterparty_key(name: str | None) -> str | None:
    """The clear memory key of a counterparty name (the first of ``memory_keys``), or None."""
    tokens = _key_tokens(name) if name else ()
    return "cp:" + " ".join(tokens[:3]) if tokens else None


@lru_cache(maxsize=PSEUDONYMS_CACHED_MAX)
def pseudonym(pepper: bytes, org_id: str, key: str) -> str:
    """A memory key as stored and looked up with a pepper: not reversible without it."""
    if key.startswith(PSEUDONYM_PREFIX):
        return key
    digest = hmac.new(pepper, b"hera-memory\x00" + f"{org_id}\x00{key}".encode(), hashlib.sha256).hexdigest()
    return PSEUDONYM_PREFIX + digest[:PSEUDONYM_HEX_CHARS]


def subject_memory_keys(org_id: str, name: str, pepper: bytes | None) -> list[str]:
    """The keys under which memory holds what was learnt about counterparty ``name`` in ``org_id``:
    the clear key (a state written before pseudonyms) and its pseudonym."""
    key = counterparty_key(name)
    if key is None:
        return []
    return [key] + ([pseudonym(pepper, org_id, key)] if pepper else [])


class OrgMemory:
    """In-memory, JSON-serialisable learned state for many organisations (keys pseudonymised when a
    ``pepper`` is given)."""

    def __init__(self, pepper: bytes | None = None) -> None:
        self._orgs: dict[str, _OrgState] = {}
        self._pepper = pepper

    def _keys(self, org_id: str, event: object) -> list[str]:
        keys = memory_keys(event)
        return keys if self._pepper is None else [pseudonym(self._pepper, org_id, k) for k in keys]

    # -- learning ---------------------------------------------------------------------------

    def learn(self, org_id: str, event: object, smart_code: str, *, corrected: bool,
              used_key: str | None = None) -> None:
        """Record a reviewer's decision: ``smart_code`` is right for this event.

        ``corrected`` says whether the reviewer changed the suggestion; both kinds of decision are
        evidence (an approval confirms the key's code), and count the same. ``used_key`` is the key
        whose memory made the suggestion (``explanation["memory_key"]``); by default, the key the
        lookup would use now. If it contradicts the decision it is demoted even when it is not
        among this event's keys any more.
        """
        if not SMART_CODE_RE.match(smart_code or ""):
            raise ValueError(f"not a smart code: {smart_code!r}")
        state = self._orgs.setdefault(org_id, _OrgState())
        state.seq += 1
        keys = self._keys(org_id, event)
        if used_key and self._pepper is not None:
            used_key = pseudonym(self._pepper, org_id, used_key)
        used_key = used_key or self._used_key(state, event, keys)
        used = state.entries.get(used_key) if used_key else None
        if used is not None and used_key not in keys:
            self._demote_if_contradicted(used, smart_code)
        for position, key in enumerate(keys):
            entry = state.entries.get(key)
            if entry is None:
                entry = state.entries[key] = _Entry()
            self._update(state, entry, smart_code, count_agreement=position == 0)
            entry.seq = state.seq
        if len(state.entries) > ENTRIES_PER_ORG_MAX:
            self._evict(state)

    @staticmethod
    def _used_key(state: _OrgState, event: object, keys: list[str]) -> str | None:
        allowed = allowed_codes(enum_value(getattr(event, "direction", None)))
        for key in keys:
            entry = state.entries.get(key)
            if entry and any(c in allowed for c in entry.counts):
                return key
        return None

    @staticmethod
    def _demote_if_contradicted(entry: _Entry, code: str) -> None:
        top, _ = entry.top()
        if top is not None and top != code and (entry.rule or entry.counts[top] >= MIN_DECISIONS):
            entry.rule = False                                   # demote on contradiction
            entry.counts[top] = entry.counts[top] / 2

    @staticmethod
    def _update(state: _OrgState, entry: _Entry, code: str, *, count_agreement: bool) -> None:
        top, _ = entry.top()
        if top is not None and count_agreement:
            if top == code:
                state.agree += 1
            else:
                state.disagree += 1
        OrgMemory._demote_if_contradicted(entry, code)
        entry.counts[code] = entry.counts.get(code, 0.0) + 1.0
        entry.streak = entry.streak + 1 if entry.streak_code == code else 1
        entry.streak_code = code
        new_top, n_top = entry.top()
        if (entry.streak >= PROMOTE_AFTER and new_top == code and n_top / entry.n >= PROMOTE_SHARE):
            entry.rule = True

    @staticmethod
    def _evict(state: _OrgState) -> None:
        by_age = sorted(state.entries.items(), key=lambda kv: kv[1].seq)
        for key, _ in by_age[: len(state.entries) - ENTRIES_PER_ORG_MAX]:
            del state.entries[key]

    # -- lookup -----------------------------------------------------------------------------

    def lookup(self, org_id: str, event: object) -> Classification | None:
        """The organisation's learned classification for this event, or ``None``."""
        state = self._orgs.get(org_id)
        if state is None:
            return None
        allowed = allowed_codes(enum_value(getattr(event, "direction", None)))
        for key in self._keys(org_id, event):
            entry = state.entries.get(key)
            counts = {c: n for c, n in entry.counts.items() if c in allowed} if entry else {}
            if entry is not None and counts:   # a refund never inherits the merchant's expense code, and vice versa
                return self._classification(state, entry, counts, key)
        return None

    @staticmethod
    def _classification(state: _OrgState, entry: _Entry, counts: dict[str, float], key: str) -> Classification:
        n = sum(counts.values())
        prior = state.consistency()
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        top_code, n_top = ranked[0]
        confidence = (n_top + PRIOR_STRENGTH * prior) / (n + PRIOR_STRENGTH)
        capped_by = None
        if n_top < MIN_DECISIONS and confidence > HINT_CONFIDENCE_MAX:
            confidence, capped_by = HINT_CONFIDENCE_MAX, "one_decision"
        alternatives = [(top_code, round(confidence, 4))]
        for code, count in ranked[1:ALTERNATIVES_MAX]:
            alternatives.append((code, round(count / (n + PRIOR_STRENGTH), 4)))
        method = "org_rule" if entry.rule else "memory"
        explanation = {"method": method, "memory_key": key, "decisions": round(n, 2), "agreeing": round(n_top, 2),
                       "capped_by": capped_by}
        return Classification(top_code, round(confidence, 4), tuple(alternatives), method, explanation=explanation)

    def stats(self, org_id: str) -> dict:
        state = self._orgs.get(org_id) or _OrgState()
        return {"keys": len(state.entries), "rules": sum(e.rule for e in state.entries.values()),
                "agree": state.agree, "disagree": state.disagree, "consistency": round(state.consistency(), 4)}

    # -- persistence ------------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {"version": STATE_VERSION, "orgs": {
            org: {"agree": s.agree, "disagree": s.disagree, "seq": s.seq, "entries": {
                key: {"counts": dict(e.counts), "streak_code": e.streak_code, "streak": e.streak,
                      "rule": e.rule, "seq": e.seq}
                for key, e in s.entries.items()}}
            for org, s in self._orgs.items()}}

    def export_org(self, org_id: str) -> dict:
        """One organisation's state, in ``to_dict``'s format (what a worker persists for it)."""
        data = self.to_dict()
        return {"version": data["version"], "orgs": {k: v for k, v in data["orgs"].items() if k == org_id}}

    def absorb(self, data: dict) -> None:
        """Take over the organisations present in ``data`` (``to_dict`` format), replacing ours; clear keys
        are re-keyed as pseudonyms when this memory has a pepper."""
        loaded = OrgMemory.from_dict(data)._orgs
        if self._pepper is not None:
            for org, state in loaded.items():
                state.entries = {pseudonym(self._pepper, org, k): e for k, e in state.entries.items()}
        self._orgs.update(loaded)

    @classmethod
    def from_dict(cls, data: dict) -> OrgMemory:
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            raise MemoryError_(f"unsupported memory state version: {data.get('version') if isinstance(data, dict) else data!r}")
        memory = cls()
        try:
            for org, raw in data["orgs"].items():
                state = _OrgState(agree=int(raw["agree"]), disagree=int(raw["disagree"]), seq=int(raw.get("seq", 0)))
                for key, e in raw["entries"].items():
                    state.entries[key] = _Entry({str(c): float(v) for c, v in e["counts"].items()},
                                                e.get("streak_code"), int(e.get("streak", 0)),
                                                bool(e.get("rule", False)), int(e.get("seq", 0)))
                memory._orgs[org] = state
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MemoryError_(f"malformed memory state: {exc}") from exc
        return memory
