"""Running a ``custom`` health check on the device: a program, never a shell.

Only when the agent was started with custom checks allowed, only programs inside the
allow-listed directory (after resolving links), with a timeout after which the program is
killed. Exit status 0 passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Sequence
from pathlib import Path


class CustomChecks:
    def __init__(self, allowed_dir: Path | None) -> None:
        """``allowed_dir`` None: custom checks are refused (the agent's default)."""
        self.allowed_dir = allowed_dir.resolve() if allowed_dir is not None else None

    def refusal(self, command: Sequence[str]) -> str | None:
        """Why ``command`` may not run, or None."""
        if self.allowed_dir is None:
            return "custom checks are not allowed on this device (start the agent with them)"
        if not command:
            return "no command"
        program = Path(command[0])
        if not program.is_absolute():
            return "the program must be an absolute path"
        resolved = program.resolve()
        if not resolved.is_relative_to(self.allowed_dir):
            return f"{command[0]} is outside the allowed directory {self.allowed_dir}"
        if not resolved.is_file() or not os.access(resolved, os.X_OK):
            return f"{command[0]} is not an executable file"
        return None

    async def run(self, command: Sequence[str], seconds: float) -> tuple[bool, str]:
        """(passed, what was seen): exit 0 within ``seconds`` passes."""
        refusal = self.refusal(command)
        if refusal is not None:
            return False, refusal
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # so that a timeout kills what it started too
        )
        try:
            async with asyncio.timeout(seconds):
                output, _ = await process.communicate()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, 9)
            await process.wait()
            return False, f"still running after {seconds:g} s: killed"
        text = output.decode(errors="replace").strip()[-500:]
        if process.returncode == 0:
            return True, text or "exit 0"
        return False, f"exit {process.returncode}" + (f": {text}" if text else "")
