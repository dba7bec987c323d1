"""The classifier's memory with a pepper (as the worker runs it, SECURITY.md §7): keys are keyed
pseudonyms, never a counterparty's or descriptor's words; learning and lookup behave exactly as with
clear keys; a state stored with clear keys is re-keyed on load; and ``subject_memory_keys`` names
the key an erasure must delete."""

from __future__ import annotations

import json

from pipeline.classify import OrgMemory
from pipeline.classify.codes import SHORT_CODES
from pipeline.classify.evaluate import DictEvent
from pipeline.classify.memory import subject_memory_keys

REPAIRS = SHORT_CODES["REPAIRS"]
PEPPER = b"m" * 32


def line(counterparty: str, description: str = "QXZV 77812") -> DictEvent:
    return DictEvent({"description": description, "counterparty": counterparty, "direction": "debit",
                      "source": "bank_feed", "amount": "120.00", "currency": "USD", "organization_id": "org-a"})


def test_pseudonymised_memory_learns_like_clear_memory_and_holds_no_words() -> None:
    clear, hidden = OrgMemory(), OrgMemory(pepper=PEPPER)
    for memory in (clear, hidden):
        for i in range(3):
            memory.learn("org-a", line("Ottilie Vandermolen", f"OTTILIE VANDERMOLEN {i}"), REPAIRS, corrected=True)
    a, b = clear.lookup("org-a", line("Ottilie Vandermolen")), hidden.lookup("org-a", line("Ottilie Vandermolen"))
    assert a is not None and b is not None
    assert (a.smart_code, a.confidence, a.method) == (b.smart_code, b.confidence, b.method)
    stored = json.dumps(hidden.to_dict()).lower()
    assert "ottilie" not in stored and "vandermolen" not in stored and "qxzv" not in stored
    assert "vandermolen" in json.dumps(clear.to_dict()).lower()
    [clear_key, pseudonym] = subject_memory_keys("org-a", "ottilie  VANDERMOLEN", PEPPER)
    assert clear_key in clear.to_dict()["orgs"]["org-a"]["entries"]
    assert pseudonym in hidden.to_dict()["orgs"]["org-a"]["entries"]


def test_a_clear_state_is_rekeyed_on_load() -> None:
    clear = OrgMemory()
    clear.learn("org-a", line("Ottilie Vandermolen"), REPAIRS, corrected=True)
    hidden = OrgMemory(pepper=PEPPER)
    hidden.absorb(clear.to_dict())
    assert "vandermolen" not in json.dumps(hidden.to_dict()).lower()
    found = hidden.lookup("org-a", line("Ottilie Vandermolen"))
    assert found is not None and found.smart_code == REPAIRS
