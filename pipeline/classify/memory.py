"""Per-organisation learning from reviewer decisions: counterparty memory and org rules.

Every reviewer decision (approve = the suggested code was right; correct = another code) is
evidence about a *merchant key* of that organisation: the normalised counterparty, the first two
merchant tokens of the descriptor (``d:blue bottle``), and the first merchant token alone
(``h:starbucks``, only for tokens that are not generic category words).

Confidence is a posterior, never a constant: for the key's most frequent code,

    confidence = (n_top + s · m) / (n + s)

with ``n`` decisions, ``n_top`` of them for the top code, prior strength ``s`` and prior mean
``m`` = how often this organisation's decisions agree with the key's previous majority,
Laplace-smoothed towards ``CONSISTENCY_PRIOR`` (measured, per organisation). One correction gives
(1 + 0.95) / 2 = 0.975; a contradiction drops it to about 0.65.

Lookup tries the keys from most to least specific; the broad first-token key catches the same
merchant printed with another city or store ("STARBUCKS SEATTLE" after "STARBUCKS PORTLAND").
A key whose last ``PROMOTE_AFTER`` decisions agree (and ≥ 90 % overall) becomes an *org rule*
(``method="org_rule"``). A decision that contradicts a rule demotes it at once and halves the old
code's weight, so the next lines go to review until the evidence is consistent again.

The state is plain dicts and numbers: ``to_dict`` / ``from_dict`` round-trip through JSON (for a
PostgreSQL row or a Faust table).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.classify.codes import SMART_CODE_RE, allowed_codes, enum_value
from pipeline.classify.lexicon import keyword_index
from pipeline.classify.normalize import merchant_tokens, normalize
from pipeline.classify.types import Classification
from pipeline.domain.errors import HeraError

STATE_VERSION = 1
PROMOTE_AFTER = 3
PROMOTE_SHARE = 0.9
PRIOR_STRENGTH = 1.0
CONSISTENCY_PRIOR = 0.95        # before an org has history: merchants mostly keep their category
CONSISTENCY_PRIOR_WEIGHT = 20.0
HEAD_TOKEN_MIN = 4
ENTRIES_PER_ORG_MAX = 200_000
ALTERNATIVES_MAX = 3


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


def memory_keys(event: object) -> list[str]:
    """Keys from most to least specific: counterparty, first two merchant tokens, first token."""
    keys = []
    counterparty = getattr(event, "counterparty", None)
    if counterparty:
        tokens = merchant_tokens(normalize(counterparty))
        if tokens:
            keys.append("cp:" + " ".join(tokens[:3]))
    tokens = merchant_tokens(normalize(getattr(event, "description", None)))
    if tokens:
        keys.append("d:" + " ".join(tokens[:2]))
        head = tokens[0]
        if len(head) >= HEAD_TOKEN_MIN and head not in keyword_index():
            keys.append("h:" + head)
    return keys


class OrgMemory:
    """In-memory, JSON-serialisable learned state for many organisations."""

    def __init__(self) -> None:
        self._orgs: dict[str, _OrgState] = {}

    # -- learning ---------------------------------------------------------------------------

    def learn(self, org_id: str, event: object, smart_code: str, *, corrected: bool) -> None:
        """Record a reviewer's decision: ``smart_code`` is right for this event.

        ``corrected`` says whether the reviewer changed the suggestion; both kinds of decision are
        evidence (an approval confirms the key's code), and count the same.
        """
        if not SMART_CODE_RE.match(smart_code or ""):
            raise ValueError(f"not a smart code: {smart_code!r}")
        state = self._orgs.setdefault(org_id, _OrgState())
        state.seq += 1
        for position, key in enumerate(memory_keys(event)):
            entry = state.entries.get(key)
            if entry is None:
                entry = state.entries[key] = _Entry()
            self._update(state, entry, smart_code, count_agreement=position == 0)
            entry.seq = state.seq
        if len(state.entries) > ENTRIES_PER_ORG_MAX:
            self._evict(state)

    @staticmethod
    def _update(state: _OrgState, entry: _Entry, code: str, *, count_agreement: bool) -> None:
        top, _ = entry.top()
        if top is not None and count_agreement:
            if top == code:
                state.agree += 1
            else:
                state.disagree += 1
        if entry.rule and top is not None and top != code:
            entry.rule = False                                   # demote on contradiction
            entry.counts[top] = entry.counts[top] / 2
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
        for key in memory_keys(event):
            entry = state.entries.get(key)
            counts = {c: n for c, n in entry.counts.items() if c in allowed} if entry else {}
            if counts:        # a refund never inherits the merchant's expense code, and vice versa
                return self._classification(state, entry, counts)
        return None

    @staticmethod
    def _classification(state: _OrgState, entry: _Entry, counts: dict[str, float]) -> Classification:
        n = sum(counts.values())
        prior = state.consistency()
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        top_code, n_top = ranked[0]
        confidence = (n_top + PRIOR_STRENGTH * prior) / (n + PRIOR_STRENGTH)
        alternatives = [(top_code, round(confidence, 4))]
        for code, count in ranked[1:ALTERNATIVES_MAX]:
            alternatives.append((code, round(count / (n + PRIOR_STRENGTH), 4)))
        method = "org_rule" if entry.rule else "memory"
        return Classification(top_code, round(confidence, 4), tuple(alternatives), method)

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
        """Take over the organisations present in ``data`` (``to_dict`` format), replacing ours."""
        self._orgs.update(OrgMemory.from_dict(data)._orgs)

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
