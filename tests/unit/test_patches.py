"""The gate on our patches of Faust: pinned versions only, and a fingerprint of every upstream function
we replace or rely on, recomputed from the installed files (an upgrade must fail here, loudly)."""

from __future__ import annotations

import pytest

from agents import patches
from pipeline.config import Settings


@pytest.mark.parametrize("target", sorted(patches.UPSTREAM))
def test_upstream_source_is_what_the_patches_were_written_against(target: str) -> None:
    assert patches.source_fingerprint(target) == patches.UPSTREAM[target], (
        f"{target} changed upstream: re-check agents/faust_fixes.py and agents/faust_speedups.py, "
        "re-run the fault tests, then update agents/patches.py")


def test_installed_versions_are_the_pinned_ones() -> None:
    assert patches.installed_versions() == patches.PINNED
    patches.check_versions()


def test_another_version_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(patches, "installed_versions",
                        lambda: {**patches.PINNED, "faust-streaming": "0.16.0"})
    with pytest.raises(patches.PatchVersionError) as refused:
        patches.install(object(), Settings())
    message = str(refused.value)
    assert "faust-streaming 0.16.0 (patches fit 0.15.3)" in message and "\n" not in message


def test_unknown_fix_name_is_refused() -> None:
    with pytest.raises(ValueError, match="HERA_FAUST_FIXES_OFF: unknown fix nope"):
        patches.fixes_off(Settings(faust_fixes_off="seek,nope"))
    assert patches.fixes_off(Settings(faust_fixes_off=" seek , ack")) == {"seek", "ack"}


def test_a_moved_function_is_reported() -> None:
    with pytest.raises(patches.PatchVersionError, match="not found"):
        patches.source_fingerprint("faust.events:Event.no_such_method")
