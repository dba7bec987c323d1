"""What the agents share in one worker process: the ledger store, the classifier, the catalog,
per-organisation overrides and learned memory, and the set of known organisations.

Everything is created lazily on first use (inside the worker's event loop) and cached; the set of
known organisations is refreshed from the database every ``ORGS_REFRESH_SECONDS`` so that
``hera org add`` on another machine is seen without a restart.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pipeline.config import Settings

ORGS_REFRESH_SECONDS = 5.0
HISTORY_REFRESH_SECONDS = 300.0   # amount histories (outlier rule) move slowly
MEMORY_KEY = "org_memory"


def is_transient(exc: BaseException) -> bool:
    """Faults that a later retry of the same work can cure (never bad input, never a bug)."""
    import asyncpg
    from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NotLeaderForPartitionError

    from pipeline.ledger.errors import TransientError, map_db_error

    if isinstance(exc, (TransientError, ConnectionError, OSError, asyncio.TimeoutError, KafkaConnectionError,
                        KafkaTimeoutError, NotLeaderForPartitionError, asyncpg.InterfaceError)):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        return isinstance(map_db_error(exc), TransientError)
    return False


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
        self._limits: dict[str, Any] = {}
        self._memory_at: dict[str, float] = {}
        self._limits_at: dict[str, float] = {}
        self._histories: dict[str, dict[str, Any]] = {}
        self._histories_at: dict[str, float] = {}

    async def store(self) -> Any:
        if self._store is None:
            async with self._store_lock:
                if self._store is None:
                    from pipeline.ledger.store import LedgerStore
                    self._store = await LedgerStore.connect(self.settings.worker_dsn(), pool_size=4)
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

    async def limits(self, orgs: set[str]) -> Any:
        """A ``limit_of(org)`` function: the org's rate limit from its settings, else the default.
        Settings are cached for ``ORGS_REFRESH_SECONDS``."""
        from pipeline.domain.org_settings import rate_limit_values
        from pipeline.resilience.rate_limit import RateLimit

        stale = [o for o in orgs if time.monotonic() - self._limits_at.get(o, -1e9) > ORGS_REFRESH_SECONDS]
        if stale:
            store = await self.store()
            confs = await store.org_settings_many([o for o in stale if o in self._orgs])
            for org in stale:
                conf = confs.get(org, {})
                # a stored value the token bucket cannot take falls back to the default (never a crash loop)
                per_minute, burst = rate_limit_values(conf, self.settings.rate_limit_per_minute,
                                                      self.settings.rate_limit_burst)
                self._limits[org] = RateLimit(per_minute=per_minute, burst=burst)
                self._limits_at[org] = time.monotonic()
        default = RateLimit(self.settings.rate_limit_per_minute, self.settings.rate_limit_burst)
        return lambda org: self._limits.get(org, default)

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

    async def memory(self, orgs: set[str]) -> Any:
        """The learned per-organisation memory, (re)loaded from PostgreSQL every
        ``ORGS_REFRESH_SECONDS`` so what another worker learned is seen here too."""
        from pipeline.classify.memory import OrgMemory

        if self._memory is None:
            self._memory = OrgMemory()
        now = time.monotonic()
        stale = [o for o in orgs if now - self._memory_at.get(o, -1e9) > ORGS_REFRESH_SECONDS]
        if stale:
            store = await self.store()
            loaded = await store.load_memory_many(stale)
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
