"""Without login, the chat page arrives already signed in as the local user.

Chainlit keeps history only for a signed-in user, so with no ``VISTARAG_UI_USERS`` the app signs
everyone in as the local user through a header-auth callback. Chainlit's client reaches that
callback only from its login page, though: a first visit loads ``/``, gets 401 from ``/user``,
reloads ``/login``, signs in there, goes to ``/`` before it has fetched its user, reloads
``/login`` once more, and only then settles on ``/``. The login form flashes by, and whatever is
typed into the chat meanwhile is lost with the reload. Setting the auth cookie on the page itself
(the same token ``/auth/header`` would hand out) makes the first ``/user`` succeed, so the page
never leaves ``/``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from chainlit.auth import create_jwt, decode_jwt, get_token_from_cookies, set_auth_cookie
from chainlit.user import User
from fastapi import FastAPI, Request, Response


def is_page_load(request: Request) -> bool:
    """A browser loading a page (not the client's API calls, files or socket)."""
    return request.method == "GET" and "text/html" in request.headers.get("accept", "")


def has_valid_token(request: Request) -> bool:
    token = get_token_from_cookies(request.cookies)
    if not token:
        return False
    try:
        decode_jwt(token)
    except Exception:  # expired, or signed by another server on this host (cookies ignore ports)
        return False
    return True


def install_local_session(app: FastAPI, user: Callable[[], User]) -> None:
    """Give every page load that carries no valid auth cookie one for ``user()``."""

    @app.middleware("http")
    async def local_session(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        if is_page_load(request) and not has_valid_token(request):
            set_auth_cookie(request, response, create_jwt(user()))
        return response
