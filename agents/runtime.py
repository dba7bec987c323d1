"""What the agents share in one worker process: the ledger store, the classifier, the catalog,
per-organisation settings (rate limits, and thresholds, amount caps and account overrides as that
organisation's own catalog), learned memory, and the set of known organisations.

Everything is created lazily on first use (inside the worker's event loop) and cached; the set of
known organisations is refreshed from the database every ``ORGS_REFRESH_SECONDS`` so that
``hera org add`` on another machine is seen without a restart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from pipeline.config import Settings

log = logging.getLogger("hera.runtime")

ORGS_REFRESH_SECONDS = 5.0
HISTORY_REFRESH_SECONDS = 300.0   # amount histories (outlier rule) move slowly
MEMORY_KEY = "org_memory"


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._store: Any = None
        self._store_lock = asyncio.Lock()
        self._orgs: set[str] = set()
        self._orgs_loaded_at = 0.0
        self._classifier: Any = None
        self._catalog: Any = None
        self._memory: Any = None
        self._settings: dict[str, dict[str, Any]] = {}
        self._org_catalogs: dict[str, Any] = {}
        self._memory_at: dict[str, float] = {}
        self._histories: dict[str, dict[str, Any]] = {}
        self._histories_at: dict[str, float] = {}

    async def store(self) -> Any:
        if self._store is None:
            async with self._store_lock:
                if self._store is None:
                    from pipeline.ledger.cache import OrgCaches
                    from pipeline.ledger.store import LedgerStore
                    self._store = await LedgerStore.connect(self.settings.worker_dsn(), pool_size=4,
                                                            caches=OrgCaches.from_url(self.settings.cache_url))
        return self._store

    async def known_orgs(self) -> set[str]:
        if time.monotonic() - self._orgs_loaded_at > ORGS_REFRESH_SECONDS:
            store = await self.store()
            self._orgs = set(await store.known_organizations())
            self._orgs_loaded_at = time.monotonic()
        return self._orgs

    async def provision(self, orgs: set[str]) -> None:
        """Register organisations seen for the first time (auto-provisioning)."""
        if not orgs:
            return
        store = await self.store()
        await store.ensure_organizations(sorted(orgs))
        self._orgs |= orgs

    async def org_settings(self, orgs: set[str]) -> dict[str, dict[str, Any]]:
        """The organisations' settings (``hera org set``), through the store's bounded org cache (TTLs
        in ``pipeline/ledger/cache.py``); an organisation's catalog is rebuilt when its settings change."""
        store = await self.store()
        confs = await store.org_settings_many([o for o in orgs if o in self._orgs])
        for org, conf in confs.items():
            if conf != self._settings.get(org):
                self._settings[org] = conf
                self._org_catalogs.pop(org, None)
        return {o: confs.get(o, {}) for o in orgs}

    async def limits(self, orgs: set[str]) -> Any:
        """A ``limit_of(org)`` function: the org's rate limit from its settings, else the default; a
        stored value the token bucket cannot take falls back to the default (never a crash loop)."""
        from pipeline.admission.rate_limit import RateLimit, rate_limit_values

        confs = await self.org_settings(orgs)
        default = RateLimit(self.settings.rate_limit_per_minute, self.settings.rate_limit_burst)
        limits = {}
        for org, conf in confs.items():
            if conf:
                per_minute, burst = rate_limit_values(conf, default.per_minute, default.burst)
                limits[org] = RateLimit(per_minute=per_minute, burst=burst)
        return lambda org: limits.get(org, default)

    async def org_catalogs(self, orgs: set[str]) -> dict[str, Any]:
        """The catalog of every organisation among ``orgs`` whose settings override thresholds, caps or
        accounts (the others use the shared catalog). Settings the catalog refuses (stored before they
        were checked) are logged and ignored."""
        from pipeline.domain.errors import CatalogError
        from pipeline.domain.org_settings import org_catalog, overrides

        out = {}
        for org, conf in (await self.org_settings(orgs)).items():
            if not overrides(conf):
                continue
            if org not in self._org_catalogs:
                try:
                    self._org_catalogs[org] = org_catalog(self.catalog(), conf)
                except CatalogError as exc:
                    log.warning("organisation %s: settings ignored: %s", org, exc)
                    self._org_catalogs[org] = None
            if self._org_catalogs[org] is not None:
                out[org] = self._org_catalogs[org]
        return out

    def catalog(self) -> Any:
        if self._catalog is None:
            from pipeline.flow import calibrated_catalog
            self._catalog = calibrated_catalog(self.classifier())
        return self._catalog

    def classifier(self) -> Any:
        if self._classifier is None:
            from pipeline.classify import Classifier
            self._classifier = Classifier.load()
        return self._classifier

    async def memory(self, orgs: set[str], *, fresh: bool = False) -> Any:
        """The learned per-organisation memory, (re)loaded from PostgreSQL every
        ``ORGS_REFRESH_SECONDS`` so what another worker learned is seen here too (``fresh``: now,
        before learning, so that a save never writes back what ``hera privacy erase`` removed)."""
        from pipeline.classify.memory import OrgMemory

        if self._memory is None:   # keys kept as pseudonyms, never names (SECURITY.md §7)
            self._memory = OrgMemory(pepper=(await self.store()).pepper)
        now = time.monotonic()
        stale = [o for o in orgs if fresh or now - self._memory_at.get(o, -1e9) > ORGS_REFRESH_SECONDS]
        if stale:
            store = await self.store()
            loaded = await store.load_memory_many(stale, fresh=fresh)
            for org in stale:
                saved = loaded.get(org, {}).get(MEMORY_KEY)
                if saved:
                    self._memory.absorb(saved)  # PostgreSQL is the shared truth
                self._memory_at[org] = now
        return self._memory

    async def save_memory(self, orgs: set[str]) -> None:
        """Persist what was just learned, so every worker and a restart see it."""
        if not orgs or self._memory is None:
            return
        store = await self.store()
        for org in orgs:
            await store.save_memory(org, {MEMORY_KEY: self._memory.export_org(org)})
            self._memory_at[org] = time.monotonic()

    async def classify_context(self, orgs: set[str]) -> Any:
        from pipeline.flow import ClassifyContext

        known = orgs & await self.known_orgs()
        return ClassifyContext(classifier=self.classifier(), catalog=self.catalog(), memory=await self.memory(known),
                               org_catalogs=await self.org_catalogs(known),
                               histories=await self.histories(known))

    async def histories(self, orgs: set[str]) -> dict[tuple[str, str], Any]:
        """(org, smart code) -> amount history for the outlier rule, reloaded every
        ``HISTORY_REFRESH_SECONDS``."""
        now = time.monotonic()
        stale = [o for o in orgs if now - self._histories_at.get(o, -1e9) > HISTORY_REFRESH_SECONDS]
        if stale:
            loaded = await (await self.store()).amount_histories(stale)
            for org in stale:
                self._histories[org] = loaded.get(org, {})
                self._histories_at[org] = now
        return {(org, code): h for org in orgs for code, h in self._histories.get(org, {}).items()}

    async def close(self) -> None:
        if self._store is not None:
            await self._store.close()
            self._store = None
