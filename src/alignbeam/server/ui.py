"""The playground (`alignbeam serve --ui`): a page at /ui that shows what AlignBeam decided, and why.

The page is a client of this server's own /v1 API: it sends each prompt twice to /v1/chat/completions (the draft
alone with `"mode": "draft"`, and AlignBeam with `"return_trace": true`), both streamed, and draws the trace of the
closing chunk (route and reason, candidates and judge scores, the mixed prefix shaded by the anchor's share). So
it shows nothing a client could not get, and no second code path can drift from the API's.

Files: `ui/` in this package (HTML, JavaScript, CSS; no build step, nothing fetched from elsewhere: it works
offline). Every /ui response carries a Content-Security-Policy that only allows this server's own scripts and
styles, as a second line behind the page's rule of rendering every text with `textContent`.

Auth, when the server has a key (or per-key policies): a browser cannot add a Bearer header to a page load, so
`GET /ui` without the key answers 401 with a key form and nothing of the app. The form posts the key to
`/ui/login`; a right key sets the cookie `alignbeam_key` (path /ui, SameSite=Strict, no expiry: it ends with the
browser session) and redirects to /ui. That cookie opens /ui and its files only: /v1 never reads it (so another
site cannot make a browser spend the key), and the page's script reads it to send the key as a Bearer header on
its /v1 calls. A request with the Bearer header itself (curl) gets /ui too.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.resources
import urllib.parse

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from alignbeam.server.auth import authorized, unauthorized
from alignbeam.server.errors import JSON, api_error
from alignbeam.server.policies import DEFAULT, policy_for
from alignbeam.server.state import state_of
from alignbeam.server.ui_knobs import knobs_document

COOKIE = "alignbeam_key"
#: the static files by name, with their media type; any other name under /ui is a 404
FILES = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}
HTML = "text/html; charset=utf-8"
#: only this server's own scripts, styles and API: an injected <script> or inline handler would not run
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
MAX_LOGIN_BYTES = 4096


def add_ui_routes(app: FastAPI) -> None:
    """Mount the playground at /ui (create_app does, with `ui=True`)."""
    for path, handler, method in (
        ("/ui", page, "GET"),
        ("/ui/", page, "GET"),
        ("/ui/login", login, "POST"),
        ("/ui/knobs.json", knobs_json, "GET"),
        ("/ui/{name}", static_file, "GET"),
    ):
        app.add_api_route(path, handler, methods=[method], response_model=None, include_in_schema=False)


def read_file(name: str) -> str:
    """A file of the page, from the installed package (package data), read per request: they are small, and an
    edited file shows on reload."""
    return (importlib.resources.files("alignbeam.server") / "ui" / name).read_text(encoding="utf-8")


def with_bearer(request: Request, key: str) -> Request:
    """The request as if it had sent `key` as its Bearer header and no other header, so a key from the cookie or
    the form is checked by `auth.authorized` exactly as a /v1 call's would be (the server's key and any other
    key it accepts alike)."""
    headers = [(b"authorization", b"Bearer " + key.encode("utf-8"))]
    return Request({**request.scope, "headers": headers})


def as_authorized(request: Request) -> Request | None:
    """The request with the credentials that open the playground (its own Bearer header, or the cookie's key as
    one), or None when it may not see it. No key needed: the request itself."""
    state = state_of(request)
    if authorized(state, request):
        return request
    key = urllib.parse.unquote(request.cookies.get(COOKIE, ""))
    keyed = with_bearer(request, key)
    return keyed if key and authorized(state, keyed) else None


def auth_required(request: Request) -> bool:
    """Whether the server wants a key at all (a request without any header is refused)."""
    return not authorized(state_of(request), Request({**request.scope, "headers": []}))


def ui_root(request: Request) -> str:
    """The page's path, under any prefix a proxy serves the app at."""
    return request.scope.get("root_path", "").rstrip("/") + "/ui"


def login_page(message: str) -> Response:
    """The 401 answer to an unauthorized page load: the key form, and nothing of the app. `message` is one of
    the fixed sentences below, never text from the request. The form's own <style> is allowed by its hash, since
    the stylesheet is behind the key."""
    body = read_file("login.html").replace("<!--message-->", message)
    style = body.partition("<style>")[2].partition("</style>")[0]
    digest = base64.b64encode(hashlib.sha256(style.encode("utf-8")).digest()).decode("ascii")
    csp = CSP.replace("style-src 'self'", f"style-src 'sha256-{digest}'")
    headers = {**HEADERS, "Content-Security-Policy": csp, "WWW-Authenticate": "Bearer"}
    return Response(body, 401, media_type=HTML, headers=headers)


async def page(request: Request) -> Response:
    """GET /ui: the playground, or the key form when the server has a key and the request does not carry it."""
    if as_authorized(request) is None:
        return login_page("This server needs its API key.")
    return Response(read_file("index.html"), media_type=HTML, headers=HEADERS)


async def static_file(name: str, request: Request) -> Response:
    """GET /ui/app.js and /ui/style.css, behind the key like the page."""
    if name not in FILES:
        return api_error(404, f"no such playground file: {name!r}")
    if as_authorized(request) is None:
        return unauthorized()
    return Response(read_file(name), media_type=FILES[name], headers=HEADERS)


async def knobs_json(request: Request) -> Response:
    """GET /ui/knobs.json: the per-request knobs with their help and the defaults this key's requests get (the
    server's, under the key's policy where it has one: ui_knobs.py)."""
    keyed = as_authorized(request)
    if keyed is None:
        return unauthorized()
    state = state_of(request)
    policy = policy_for(state.policies, state.api_key, keyed) or DEFAULT
    return JSON(knobs_document(state, policy.knobs, auth=auth_required(request)), headers=HEADERS)


async def login(request: Request) -> Response:
    """POST /ui/login (the key form, url-encoded `key=`): a right key sets the cookie and goes back to /ui; a
    wrong one gets the form again, with a 401."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_LOGIN_BYTES:
            return api_error(413, f"the key form's body is over {MAX_LOGIN_BYTES} bytes")
    fields = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
    key = (fields.get("key") or [""])[0].strip()
    if auth_required(request) and not (key and authorized(state_of(request), with_bearer(request, key))):
        return login_page("That key was refused: try again.")
    response = RedirectResponse(ui_root(request), status_code=303, headers=HEADERS)
    if key and auth_required(request):
        response.set_cookie(
            COOKIE,
            urllib.parse.quote(key, safe=""),
            path=ui_root(request),
            samesite="strict",
            secure=request.url.scheme == "https",
        )
    return response
