"""The command line, run as users run it: ``python -m frontdesk ...`` in a process of its own."""

from __future__ import annotations

import asyncio
import os
import sys


async def frontdesk_cli(database_url: str, *arguments: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``frontdesk <arguments>`` on this database. Awaited, not
    run blocking: the server under test may share this event loop."""
    cli = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "frontdesk", *arguments],
        env={
            **os.environ,
            "FRONTDESK_DATABASE_URL": database_url,
            "FRONTDESK_LOG_LEVEL": "error",
            # Wide enough that a table's row is one line.
            "COLUMNS": "200",
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(cli.communicate(), 60)
    assert cli.returncode is not None
    return cli.returncode, stdout.decode(), stderr.decode()
