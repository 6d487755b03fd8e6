"""httpcore asks which async library runs on every request, by importing sniffio: absent, each
asking is a failed import that searches sys.path (15 % of a simulator's CPU with 2,500 agents,
and the same on every device running the agent). sniffio is a dependency, so the import is a
dictionary lookup."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

from httpcore import _synchronization


class Asked:
    """A meta path finder that finds nothing and records what it was asked for."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        self.names.append(name)
        return None


async def test_asking_for_the_async_library_imports_nothing() -> None:
    assert _synchronization.current_async_library() == "asyncio"  # the first may import
    asked = Asked()
    sys.meta_path.insert(0, asked)
    try:
        for _ in range(3):
            assert _synchronization.current_async_library() == "asyncio"
    finally:
        sys.meta_path.remove(asked)
    assert asked.names == []
