"""The console's template list: every template by id, at its latest version, a page at a time,
each opening the template's own page; above the form that opens a template by id."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.client import Api, unique
from tests.support.instance import ADMIN_KEY

GREETING = {"channels": {"in_app": {"title": "Hello", "body": "Hello"}}}
# One more than a console page holds, so that the list has a next page whatever else is stored.
TEMPLATES = 51
_NEXT_PAGE = re.compile(r'href="\?([^"]*cursor=[^"]*)" rel="next">Next page')


@pytest.fixture
async def operator(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A browser-like client (cookie jar, no API key) with an operator's console session."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        response = await http.post("/console/login", data={"api_key": ADMIN_KEY})
        assert response.status_code == 303, response.text
        yield http


def _listed_links(page: httpx.Response, prefix: str) -> list[str]:
    """The links of the listed templates whose id starts with ``prefix``, in page order."""
    return re.findall(rf'href="(\?template_id={re.escape(prefix)}[^"]*)"', page.text)


async def _next_page(operator: httpx.AsyncClient, page: httpx.Response) -> httpx.Response | None:
    """The page its "next page" link leads to, or None on the last page."""
    assert page.status_code == 200, page.text
    link = _NEXT_PAGE.search(page.text)
    if link is None:
        return None
    return await operator.get("/console/templates?" + html.unescape(link.group(1)))


async def test_the_list_pages_through_every_template_each_linking_to_its_page(
    operator: httpx.AsyncClient, api: Api
) -> None:
    prefix = unique("console-listed")
    ids = [f"{prefix}-{number:02d}" for number in range(TEMPLATES)]
    for template_id in ids:
        await api.put_template(GREETING, template_id)

    links: list[str] = []
    pages = 0
    page: httpx.Response | None = await operator.get("/console/templates")
    while page is not None:
        links.extend(_listed_links(page, prefix))
        pages += 1
        page = await _next_page(operator, page)

    assert pages >= 2
    assert links == [f"?template_id={template_id}" for template_id in ids]


async def test_a_listed_template_shows_its_latest_version_and_opens_its_page(
    operator: httpx.AsyncClient, api: Api
) -> None:
    template_id = await api.put_template(GREETING)
    await api.put_template({"channels": {"sms": {"text": "Hi"}}}, template_id)

    page: httpx.Response | None = await operator.get("/console/templates")
    while page is not None and template_id not in page.text:
        page = await _next_page(operator, page)
    assert page is not None, f"{template_id} is on no page of the list"
    row = re.search(
        rf'<tr>\s*<td><a href="([^"]+)">{re.escape(template_id)}</a></td>(.*?)</tr>',
        page.text,
        re.S,
    )
    assert row is not None
    opened = await operator.get("/console/templates" + html.unescape(row.group(1)))

    cells = [cell.strip() for cell in re.findall(r"<td>(.*?)</td>", row.group(2))]
    assert cells[:3] == ["2", "transactional", "sms"]
    assert opened.status_code == 200
    assert "Version 2" in opened.text
    assert "All templates" not in opened.text


async def test_the_list_comes_before_the_form_that_opens_a_template_by_id(
    operator: httpx.AsyncClient, api: Api
) -> None:
    await api.put_template(GREETING)

    page = await operator.get("/console/templates")

    assert page.status_code == 200
    assert 0 <= page.text.index("All templates") < page.text.index('<label for="template_id">')
    assert '<table class="console-table">' in page.text
