"""An organisation's settings (``hera org add/set --settings``), as a strict schema: unknown keys are
refused, so a typo never silently becomes a setting that nothing reads (docs/cli.md).

The smart codes and account codes named here are checked against the catalog by the caller
(``Catalog.with_overrides``), since the catalog is data outside this package.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

_THRESHOLD = Annotated[str, Field(pattern=r"^(0(\.[0-9]{1,4})?|1(\.0{1,4})?)$",
                                  description="auto-post threshold in [0, 1], e.g. \"0.95\"")]
_CAP = Annotated[str, Field(pattern=r"^(0|[1-9][0-9]{0,14})(\.[0-9]{1,4})?$", description="amount cap")]
_ACCOUNT = Annotated[str, Field(pattern=r"^[0-9A-Za-z][0-9A-Za-z._-]{0,31}$")]
RATE_PER_MINUTE_MAX = 1_000_000  # the token bucket's own limit (pipeline.admission.rate_limit); a test ties them


class OrgSettingsV1(BaseModel):
    """Every key is optional; ``org set`` merges the given keys into the stored settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rate_limit_per_minute: Annotated[int, Field(ge=1, le=RATE_PER_MINUTE_MAX)] | None = None
    rate_limit_burst: Annotated[int, Field(ge=1, le=RATE_PER_MINUTE_MAX)] | None = None
    thresholds: dict[str, _THRESHOLD] | None = Field(default=None, description="smart code -> threshold")
    amount_caps: dict[str, _CAP | None] | None = Field(default=None, description="smart code -> cap (null: none)")
    accounts: dict[str, _ACCOUNT] | None = Field(default=None, description="standard account -> own account")
