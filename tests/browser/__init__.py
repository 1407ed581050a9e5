"""The pages, tested in a real browser (Debian's Chromium, driven by Playwright)."""
