"""An organisation's settings (``hera org add/set --settings``): the keys allowed, their checks, and
the catalog they make for that organisation. Pure: values in, values out.

    {"rate_limit_per_minute": 100, "rate_limit_burst": 100,
     "thresholds":  {"<smart code>": "0.97", …},      auto-post threshold per code (0 … 1)
     "amount_caps": {"<smart code>": "5000.00" | null, …}, auto-post only under the cap (null: none)
     "accounts":    {"<standard account>": "<org's own account>", …}}

Unknown keys are refused (a typo must not be silently ignored); so are thresholds of unknown codes
and account overrides of unknown standard accounts (``Catalog.with_overrides`` checks those).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.domain.catalog import Catalog
from pipeline.domain.errors import CatalogError

KEYS = ("rate_limit_per_minute", "rate_limit_burst", "thresholds", "amount_caps", "accounts", "name")
RATE_KEYS = ("rate_limit_per_minute", "rate_limit_burst")
MAP_KEYS = ("thresholds", "amount_caps", "accounts")


def problems(settings: Mapping[str, Any], catalog: Catalog | None = None) -> list[str]:
    """Every reason ``settings`` cannot be an organisation's settings ([] when it can)."""
    found = [f"unknown key {key!r} (allowed: {', '.join(KEYS)})" for key in settings if key not in KEYS]
    for key in RATE_KEYS:
        value = settings.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            found.append(f"{key} must be a whole number of at least 1")
    for key in MAP_KEYS:
        value = settings.get(key)
        if value is not None and not isinstance(value, Mapping):
            found.append(f"{key} must be a JSON object")
    if catalog is not None and not found:
        try:
            org_catalog(catalog, settings)
        except CatalogError as exc:
            found.append(str(exc))
    return found


def overrides(settings: Mapping[str, Any]) -> bool:
    """Whether ``settings`` change the catalog at all (else the shared catalog serves)."""
    return any(settings.get(key) for key in MAP_KEYS)


def org_catalog(catalog: Catalog, settings: Mapping[str, Any]) -> Catalog:
    """``catalog`` with the organisation's thresholds, amount caps and account overrides applied."""
    return catalog.with_overrides(thresholds=_decimals(settings.get("thresholds")),
                                  accounts=settings.get("accounts") or None,
                                  amount_caps=_decimals(settings.get("amount_caps")))


def _decimals(values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """JSON numbers as the decimal strings the catalog takes (``0.97`` → ``"0.97"``); others as given."""
    if not values:
        return None
    return {k: str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v for k, v in values.items()}

