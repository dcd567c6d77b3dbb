"""Flask's signed-cookie sessions, without building the cookie signer on requests that carry no session cookie.

Flask opens the session on every request; its stock interface derives an HMAC signer each time even when there
is no cookie to read. API clients (stop displays polling every few seconds, validators) never send one, so for
them this is pure overhead. Reading and writing cookies is unchanged: with a cookie, or when a view stores
something, the stock code runs.
"""

from __future__ import annotations

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

__all__ = ["CookieSessionInterface"]


class CookieSessionInterface(SecureCookieSessionInterface):
    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()  # what the stock interface returns here, minus the signer it builds
        return super().open_session(app, request)
