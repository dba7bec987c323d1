"""Caches of per-organisation reads (aiocache): settings, charts of accounts, smart-code catalogs
and learned classifier memory. Every size and time-to-live is named here, in ``KINDS``.

Why: the worker reads these for every batch; they change rarely (``hera org set``, a new account,
a review decision). In-process memory by default, bounded (oldest written evicted first); Redis
when ``HERA_CACHE_URL=redis://host:port/db``, shared by every worker and the CLI, so an
invalidation by one process is seen by all at once (with the in-process backend, other
processes see a change after the kind's TTL).

    caches = OrgCaches.from_url(settings.cache_url)
    found = await caches.get_many("settings", orgs)          # {org: value} for the cached ones
    await caches.set_many("settings", {org: value, ...})
    await caches.invalidate(org)                               # every kind of one organisation

Values cached through Redis must be JSON values (``JsonSerializer``); charts are stored as
``{code: account id text}``. Catalog objects are in-process only (``local_only``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aiocache import Cache, SimpleMemoryCache
from aiocache.serializers import JsonSerializer
from pydantic import SecretStr

from pipeline.domain.errors import HeraError


@dataclass(frozen=True)
class Kind:
    ttl_seconds: float
    size_max: int
    local_only: bool = False  # values that are Python objects, never sent to Redis


KINDS: dict[str, Kind] = {
    "settings": Kind(ttl_seconds=5.0, size_max=10_000),
    "chart": Kind(ttl_seconds=300.0, size_max=10_000),
    "memory": Kind(ttl_seconds=5.0, size_max=2_000),
    # closed posting periods: a period closed elsewhere meanwhile is refused by the database's
    # trigger, and the store re-reads them before it retries (pipeline/ledger/store.py)
    "periods": Kind(ttl_seconds=5.0, size_max=10_000),
    "catalog": Kind(ttl_seconds=60.0, size_max=1_000, local_only=True),
}
log = logging.getLogger("hera.cache")
NAMESPACE = "hera:"
REDIS_TIMEOUT_SECONDS = 1.0  # a call to a shared cache; the in-process one needs none (and a timeout costs a task)


class CacheConfigError(HeraError):
    """``HERA_CACHE_URL`` cannot work (unknown scheme, or Redis without its client library)."""


class BoundedMemoryCache(SimpleMemoryCache):  # type: ignore[misc]
    """aiocache's memory cache, holding at most ``size_max`` keys: setting one more evicts the
    oldest written (a re-set key counts as new)."""

    def __init__(self, size_max: int, **kwargs: Any) -> None:
        super().__init__(timeout=0, **kwargs)
        self.size_max = size_max

    async def _set(self, key: str, value: Any, ttl: Any = None, _cas_token: Any = None, _conn: Any = None) -> Any:
        if _cas_token is None and key in self._cache:
            self._cache.pop(key)  # re-inserted below, now the newest
        done = await super()._set(key, value, ttl=ttl, _cas_token=_cas_token, _conn=_conn)
        while len(self._cache) > self.size_max:
            await self._delete(next(iter(self._cache)))
        return done


class OrgCaches:
    """One cache per kind of ``KINDS``; keys are organisation ids."""

    def __init__(self, caches: Mapping[str, Any], *, shared: bool) -> None:
        self._caches = dict(caches)
        self.shared = shared

    @classmethod
    def from_url(cls, setting: str | SecretStr | None) -> OrgCaches:
        """The caches ``HERA_CACHE_URL`` asks for (it may hold a password: a ``SecretStr``)."""
        url = setting.get_secret_value() if isinstance(setting, SecretStr) else setting
        if not url or url.startswith("memory://"):
            return cls({name: BoundedMemoryCache(kind.size_max, namespace=f"{NAMESPACE}{name}:")
                        for name, kind in KINDS.items()}, shared=False)
        if not url.startswith(("redis://", "rediss://")):
            raise CacheConfigError(f"HERA_CACHE_URL: unsupported scheme in {url.split('://')[0]!r} (redis:// or unset)")
        if Cache.REDIS is None:
            raise CacheConfigError("HERA_CACHE_URL: redis:// needs the redis client library (pip install redis)")
        caches = {}
        for name, kind in KINDS.items():
            if kind.local_only:
                caches[name] = BoundedMemoryCache(kind.size_max, namespace=f"{NAMESPACE}{name}:")
            else:
                cache = Cache.from_url(url)
                cache.namespace, cache.serializer = f"{NAMESPACE}{name}:", JsonSerializer()
                cache.timeout = REDIS_TIMEOUT_SECONDS
                caches[name] = cache
        return cls(caches, shared=True)

    async def get_many(self, kind: str, orgs: Iterable[str]) -> dict[str, Any]:
        """The cached values of ``orgs``; a cache that cannot be reached is a miss, never an error
        (the database stays the truth)."""
        keys = [str(o) for o in orgs]
        if not keys:
            return {}
        try:
            values = await self._caches[kind].multi_get(keys)
        except Exception as exc:  # Redis away or slow: read through to the database
            log.warning("cache %s unavailable, reading through: %r", kind, exc)
            return {}
        return {k: v for k, v in zip(keys, values, strict=True) if v is not None}

    async def set_many(self, kind: str, values: Mapping[str, Any]) -> None:
        if values:
            try:
                await self._caches[kind].multi_set([(str(k), v) for k, v in values.items()],
                                                   ttl=KINDS[kind].ttl_seconds)
            except Exception as exc:
                log.warning("cache %s unavailable, not filled: %r", kind, exc)

    async def invalidate(self, org: str, kinds: Iterable[str] | None = None) -> None:
        """Forget what is cached for ``org`` (every kind unless ``kinds``), here and, with Redis,
        in every process (if Redis cannot be reached, other processes see the change after the
        kind's TTL)."""
        for name in kinds or KINDS:
            try:
                await self._caches[name].delete(str(org))
            except Exception as exc:
                log.warning("cache %s unavailable, %s not invalidated: %r", name, org, exc)

    async def close(self) -> None:
        for cache in self._caches.values():
            await cache.close()
