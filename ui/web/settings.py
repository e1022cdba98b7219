"""Settings of the chat UI (env prefix ``VISTARAG_UI_``), beside the core ``Settings``."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from vistarag.agent.settings import Settings
from vistarag.ui.web.auth import parse_users, read_users_file


class UISettings(BaseSettings):
    """Logins: ``VISTARAG_UI_USERS`` (``name:hash`` entries) plus the users file
    (``<data dir>/ui/users``, see ``vistarag ui add-user``); none at all = no login (one local
    user), which ``vistarag ui`` allows on a loopback address only."""

    model_config = SettingsConfigDict(env_prefix="VISTARAG_UI_", env_file=".env", extra="ignore")

    users: str = Field(default="", description="Login users as NAME:PBKDF2-HASH, comma separated.")
    max_upload_mb: float = Field(default=200.0, description="Largest file accepted in the chat.")
    name: str = Field(default="VistaRAG", description="Assistant name shown in the chat.")
    users_file: Path | None = Field(
        default=None, description="Users file (NAME:HASH a line); default <data dir>/ui/users."
    )

    def users_path(self, settings: Settings | None = None) -> Path:
        """The users file ``vistarag ui add-user`` writes and the chat reads."""
        return self.users_file or app_root(settings or Settings()) / "users"

    @cached_property
    def user_hashes(self) -> dict[str, str]:
        """Every login, from the users file and ``VISTARAG_UI_USERS`` (which wins on a clash);
        a malformed entry raises ``VistaRAGError`` naming where it is."""
        return {**read_users_file(self.users_path()), **parse_users(self.users)}

    @property
    def login(self) -> bool:
        return bool(self.user_hashes)


def app_root(settings: Settings) -> Path:
    """Chainlit's root (``.chainlit/``, ``.files/``, ``chainlit.md``), under the data dir."""
    return settings.home.resolve() / "ui"


def uploads_dir(settings: Settings) -> Path:
    """Files dropped into the chat, kept so citations can open them: ``uploads/<owner>/<sha>/``."""
    return settings.home.resolve() / "uploads"


def elements_dir(settings: Settings) -> Path:
    """Chainlit elements persisted by the local storage client."""
    return settings.home.resolve() / "ui" / "elements"


def chat_db_path(settings: Settings) -> Path:
    return settings.home.resolve() / "ui" / "chat.sqlite"
