"""Notices a user should read once per knowledge base, remembered in the data dir.

The text-bridge notice (no joint image-text model) matters when a knowledge base is built and
searched, but printed on every command it becomes noise. ``NoticeBook`` records in
``<home>/notices.json`` which notices each knowledge base has shown; ``pending_notices`` returns
the ones not shown yet and marks them shown.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vistarag.agent.models import Models


class NoticeBook:
    """Which notices each knowledge base has shown (a small JSON file, written atomically)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _read(self) -> dict[str, list[str]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def shown(self, kb: str, key: str) -> bool:
        return key in self._read().get(kb, [])

    def first_time(self, kb: str, key: str) -> bool:
        """True the first time ``key`` is asked for ``kb`` (and remember it); False after."""
        data = self._read()
        keys = data.setdefault(kb, [])
        if key in keys:
            return False
        keys.append(key)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".notices-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, self.path)
        return True

    def forget(self, kb: str) -> None:
        """Show a knowledge base's notices again (it was deleted or rebuilt)."""
        data = self._read()
        if data.pop(kb, None) is not None:
            self.path.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")


def pending_notices(models: Models, kb: str) -> list[str]:
    """Notices about the loaded models that ``kb`` has not shown yet (marked shown now).

    Call it after the models were used (it loads the joint model if nobody did).
    """
    notice = models.joint_notice
    if not notice:
        return []
    key = f"text-bridge:{models.settings.joint_model}"
    return [notice] if NoticeBook(models.settings.notices_path).first_time(kb, key) else []
