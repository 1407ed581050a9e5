"""What the browser tests share: screenshots, saved to artifacts/screenshots/ at the
repository's root for a person to look at."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Page

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


async def screenshot(page: Page, name: str) -> Path:
    """Save what the page shows now, whole."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
