"""Settings of the chat UI (env prefix ``VISTARAG_UI_``), beside the core ``Settings``."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from vistarag.agent.settings import Settings
from vistarag.ui.web.auth import parse_users


class UISettings(BaseSettings):
    """``VISTARAG_UI_USERS``: ``name:hash`` entries; empty = no login (one local user)."""

    model_config = SettingsConfigDict(env_prefix="VISTARAG_UI_", env_file=".env", extra="ignore")

    users: str = Field(default="", description="Login users as NAME:PBKDF2-HASH, comma separated.")
    max_upload_mb: float = Field(default=200.0, description="Largest file accepted in the chat.")
    name: str = Field(default="VistaRAG", description="Assistant name shown in the chat.")

    @cached_property
    def user_hashes(self) -> dict[str, str]:
        return parse_users(self.users)

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
