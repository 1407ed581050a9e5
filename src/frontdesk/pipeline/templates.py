"""Template versions compiled once and kept: versions are immutable, so the cache never goes
stale; only "which version is latest" is re-read after a short time."""

from __future__ import annotations

import time
from collections import OrderedDict

from frontdesk.core.models import TemplateVersion
from frontdesk.core.ports import TemplateSource
from frontdesk.core.rendering import CompiledTemplate, compile_template


class TemplateCatalog:
    def __init__(self, source: TemplateSource, *, latest_ttl_seconds: float = 2.0) -> None:
        self._source = source
        self._latest_ttl = latest_ttl_seconds
        self._latest: dict[str, tuple[float, TemplateVersion]] = {}
        self._compiled: OrderedDict[tuple[str, int], tuple[TemplateVersion, CompiledTemplate]] = (
            OrderedDict()
        )
        self._max_compiled = 2000

    async def latest(self, template_ids: list[str]) -> dict[str, TemplateVersion]:
        now = time.monotonic()
        found = {
            template_id: entry[1]
            for template_id in set(template_ids)
            if (entry := self._latest.get(template_id)) and now - entry[0] < self._latest_ttl
        }
        missing = [template_id for template_id in set(template_ids) if template_id not in found]
        if missing:
            for template_id, version in (
                await self._source.latest_template_versions(missing)
            ).items():
                self._latest[template_id] = (now, version)
                found[template_id] = version
        return found

    def forget_latest(self, template_id: str) -> None:
        """A new version was written here: the next request must see it at once."""
        self._latest.pop(template_id, None)

    async def compiled(
        self, template_id: str, version: int
    ) -> tuple[TemplateVersion, CompiledTemplate]:
        key = (template_id, version)
        entry = self._compiled.get(key)
        if entry is None:
            template = await self._source.get_template_version(template_id, version)
            entry = (template, compile_template(template.body))
            self._compiled[key] = entry
            if len(self._compiled) > self._max_compiled:
                self._compiled.popitem(last=False)
        else:
            self._compiled.move_to_end(key)
        return entry
