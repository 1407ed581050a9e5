"""Templates: every PUT is a new immutable version."""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, func, select

from frontdesk.core.models import TemplateVersion
from frontdesk.errors import NotFound
from frontdesk.store import tables as t
from frontdesk.store.base import StoreBase
from frontdesk.store.rows import template_from_row


class TemplateRecords(StoreBase):
    async def add_template_version(
        self, template_id: str, category: str, body: dict[str, Any], content_hash: str
    ) -> TemplateVersion:
        async with self._engines.write() as connection:
            latest = await connection.scalar(
                select(func.max(t.templates.c.version)).where(
                    t.templates.c.template_id == template_id
                )
            )
            version = (latest or 0) + 1
            row = {
                "template_id": template_id,
                "version": version,
                "category": category,
                "body": body,
                "etag": f'"v{version}-{content_hash[:16]}"',
                "created_at": self._clock.now(),
            }
            await connection.execute(t.templates.insert().values(**row))
        return template_from_row(row)

    async def get_template_version(
        self, template_id: str, version: int | None = None
    ) -> TemplateVersion:
        query = select(t.templates).where(t.templates.c.template_id == template_id)
        query = (
            query.where(t.templates.c.version == version)
            if version is not None
            else query.order_by(t.templates.c.version.desc()).limit(1)
        )
        async with self._engines.reader.connect() as connection:
            row = (await connection.execute(query)).mappings().first()
        if row is None:
            which = f"version {version} of template" if version is not None else "template"
            raise NotFound(f"no {which} {template_id!r}")
        return template_from_row(row)

    async def latest_template_versions(self, template_ids: list[str]) -> dict[str, TemplateVersion]:
        latest = (
            select(t.templates.c.template_id, func.max(t.templates.c.version).label("version"))
            .where(t.templates.c.template_id.in_(sorted(set(template_ids))))
            .group_by(t.templates.c.template_id)
            .subquery()
        )
        query = select(t.templates).join(
            latest,
            (t.templates.c.template_id == latest.c.template_id)
            & (t.templates.c.version == latest.c.version),
        )
        async with self._engines.reader.connect() as connection:
            rows = (await connection.execute(query)).mappings().all()
        return {row["template_id"]: template_from_row(row) for row in rows}

    async def list_latest_templates(
        self, category: str | None, after_template_id: str | None, limit: int
    ) -> list[TemplateVersion]:
        """The latest version of each template whose id sorts after ``after_template_id`` (of
        every template without one), in template id order. ``category`` is matched against the
        latest version only: it is the category the template's notifications are sent under."""
        latest = t.templates
        newer = t.templates.alias("newer")
        # "No newer version exists" rather than a GROUP BY: both databases then walk the primary
        # key in template order and stop after ``limit`` rows, instead of first grouping every
        # version of every template.
        later_versions = [
            newer.c.template_id == latest.c.template_id,
            newer.c.version > latest.c.version,
        ]
        query = select(latest).order_by(latest.c.template_id).limit(limit)
        if category is not None:
            query = query.where(latest.c.category == category)
        if after_template_id:
            query = query.where(latest.c.template_id > after_template_id)
            # Implied by the join, but PostgreSQL does not carry a range across it: without
            # this, its merge anti-join reads every version before the cursor on each page.
            later_versions.append(newer.c.template_id > after_template_id)
        query = query.where(~exists().where(*later_versions))
        async with self._engines.reader.connect() as connection:
            rows = (await connection.execute(query)).mappings().all()
        return [template_from_row(row) for row in rows]
