"""Prepare Chainlit's root under the data dir and start it: ``vistarag ui``.

Chainlit reads ``.chainlit/config.toml``, ``chainlit.md`` and writes ``.files/`` under its app
root; pointing ``CHAINLIT_APP_ROOT`` at ``<data dir>/ui`` keeps the working directory clean.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import subprocess
import sys
from importlib import resources
from importlib.metadata import version
from importlib.util import find_spec
from pathlib import Path

from vistarag.agent.errors import VistaRAGError
from vistarag.agent.settings import Settings
from vistarag.ui.web.settings import UISettings, app_root

APP_MODULE = Path(__file__).resolve().parent.parent / "chainlit_app.py"
INSECURE_WARNING = (
    "WARNING: --insecure-no-login: the chat on {host} signs EVERY client that reaches it in as "
    "the local user, with all its documents, files and chats. Add users instead: "
    "`vistarag ui add-user NAME`."
)


def is_loopback(host: str) -> bool:
    """``127.0.0.1``, ``::1``, ``localhost``: only this machine can connect."""
    if host.strip().lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def check_exposure(host: str, ui: UISettings, insecure_no_login: bool) -> str | None:
    """Refuse a non-loopback address without login; the warning to print, if any.

    Without users every client is signed in as the local user, so listening beyond this machine
    needs logins (``vistarag ui add-user``) or an explicit ``--insecure-no-login``.
    """
    if ui.login or is_loopback(host):
        return None
    if not insecure_no_login:
        raise VistaRAGError(
            f"--host {host} lets other machines reach the chat, and no login is configured, so "
            "every client would be signed in as the local user. Add a user with "
            f"`vistarag ui add-user NAME` (writes {ui.users_path()}), or set VISTARAG_UI_USERS, "
            "then start again; or pass --insecure-no-login to accept the risk."
        )
    return INSECURE_WARNING.format(host=host)


def prepare_root(settings: Settings, ui: UISettings) -> Path:
    """Write config, welcome page and translations (step headers without "Used") under the
    app root; return the root."""
    root = app_root(settings)
    config_dir = root / ".chainlit"
    config_dir.mkdir(parents=True, exist_ok=True)
    package = resources.files("vistarag.ui")
    template = package.joinpath("chainlit_config.toml").read_text(encoding="utf-8")
    config = (
        template.replace("{max_size_mb}", f"{ui.max_upload_mb:g}")
        .replace("{name}", ui.name.replace('"', ""))
        .replace("{chainlit_version}", version("chainlit"))
    )
    (config_dir / "config.toml").write_text(config, encoding="utf-8")
    welcome = package.joinpath("chainlit.md").read_text(encoding="utf-8")
    (root / "chainlit.md").write_text(welcome, encoding="utf-8")
    languages = _write_translations(config_dir / "translations")
    for language in languages:  # the page the UI asks for in its language (else Chainlit warns)
        (root / f"chainlit_{language}.md").write_text(welcome, encoding="utf-8")
    public = root / "public"
    public.mkdir(exist_ok=True)
    for name in ("vistarag.css", "vistarag.js", *LOGOS, FAVICON):  # logos: else Chainlit logs
        (public / name).write_text(package.joinpath(name).read_text(encoding="utf-8"), "utf-8")
    return root


LOGOS = ("logo_light.svg", "logo_dark.svg")
FAVICON = "favicon.svg"
"""Chainlit serves ``public/favicon.*`` as the page's icon and as the assistant's avatar."""


def _write_translations(target: Path) -> list[str]:
    """Chainlit's translations with step headers without "Used"; returns their languages."""
    # Importing chainlit here would create .files/ in the working directory: find it instead.
    spec = find_spec("chainlit")
    assert spec is not None and spec.submodule_search_locations
    shipped = Path(next(iter(spec.submodule_search_locations))) / "translations"
    target.mkdir(exist_ok=True)
    for src in shipped.glob("*.json"):
        data = json.loads(src.read_text(encoding="utf-8"))
        status = data.get("chat", {}).get("messages", {}).get("status", {})
        if "using" in status:
            status["using"] = ""
            status["used"] = ""
        (target / src.name).write_text(json.dumps(data, ensure_ascii=False, indent=2), "utf-8")
    return sorted({src.stem for src in shipped.glob("*.json")} | {"en-US"})


def auth_secret(root: Path) -> str:
    """A JWT secret kept under the app root (0600), so logins survive a restart."""
    path = root / ".auth-secret"
    if not path.is_file():
        path.write_text(secrets.token_urlsafe(48), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def server_env(settings: Settings, ui: UISettings, kb: str | None) -> dict[str, str]:
    root = prepare_root(settings, ui)
    env = dict(os.environ)
    # Chainlit's CLI reads CI=true (set by CI systems) as its own --ci flag, which puts a fake
    # OPENAI_API_KEY in the server's environment: the chat would offer OpenAI as configured.
    env.pop("CI", None)
    env["CHAINLIT_APP_ROOT"] = str(root)
    env["VISTARAG_HOME"] = str(settings.home.resolve())
    env.setdefault("CHAINLIT_AUTH_SECRET", auth_secret(root))
    if kb:
        env["VISTARAG_KB"] = kb
    return env


def command(host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "chainlit", "run", str(APP_MODULE), "--headless",
            "--host", host, "--port", str(port)]


def run(
    host: str, port: int, kb: str | None, ui: UISettings | None = None,
    insecure_no_login: bool = False,
) -> int:
    """Start the chat server in the foreground; returns its exit code. ``vistarag ui`` calls
    ``check_exposure`` first to print its warning; it is checked here again for other callers."""
    settings = Settings()
    ui = ui or UISettings()
    # a bad VISTARAG_UI_USERS or users file, or a public address without login, fails here
    check_exposure(host, ui, insecure_no_login)
    env = server_env(settings, ui, kb)
    try:
        return subprocess.call(command(host, port), env=env, cwd=env["CHAINLIT_APP_ROOT"])
    except KeyboardInterrupt:
        return 130
