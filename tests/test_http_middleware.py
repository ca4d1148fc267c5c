"""The ASGI and WSGI middlewares: ``Retryx-Pushback`` on 5xx responses of requests whose
retryx layer gave up, served by real servers (uvicorn, wsgiref) to a real client.
"""

from __future__ import annotations

import asyncio
import datetime
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest

import retryx.asgi
import retryx.wsgi
from retryx import ConfigError
from tests import _http_apps

Serve = Callable[..., AbstractContextManager[str]]

SERVERS: dict[str, tuple[Any, Serve, Any]] = {
    "asgi": (retryx.asgi.Middleware, _http_apps.serve_asgi, _http_apps.asgi_app),
    "wsgi": (retryx.wsgi.Middleware, _http_apps.serve_wsgi, _http_apps.wsgi_app),
}


@pytest.fixture(scope="module", params=sorted(SERVERS))
def served(request: pytest.FixtureRequest) -> Iterator[Callable[..., str]]:
    """``served(**options)``: the base URL of the kind's app behind its middleware."""
    middleware, serve, app = SERVERS[request.param]
    with serve(middleware(app)) as plain, serve(middleware(app, pushback=2.5)) as hinting:
        yield lambda **options: hinting if options else plain


def fetch(url: str) -> httpx.Response:
    """One plain GET (no retries), so the header is seen as the server sent it."""
    return httpx.get(url, timeout=5.0)


def test_gave_up_and_5xx_says_no_retry(served: Callable[..., str]) -> None:
    """A handler whose retry layer gave up answers 503 with ``Retryx-Pushback: no-retry``."""
    response = fetch(served() + "/gave-up")
    assert (503, "no-retry") == (response.status_code, response.headers.get("retryx-pushback"))


@pytest.mark.parametrize("path", ["/plain-500", "/recovered-500", "/gave-up-200"])
def test_no_pushback_without_a_give_up_or_a_5xx(served: Callable[..., str], path: str) -> None:
    """A 5xx with no give-up, or a give-up answered 200, carries no pushback."""
    response = fetch(served() + path)
    assert response.headers.get("retryx-pushback") is None


def test_throttled_give_up_sends_the_hint(served: Callable[..., str]) -> None:
    """A layer that gave up on a throttled fault with a 7 s hint passes the 7 s on."""
    response = fetch(served() + "/throttled")
    assert "7" == response.headers.get("retryx-pushback")


def test_the_pushback_option_sends_seconds(served: Callable[..., str]) -> None:
    """``pushback=2.5`` sends ``Retryx-Pushback: 2.5`` instead of ``no-retry``."""
    response = fetch(served(pushback=True) + "/gave-up")
    assert "2.5" == response.headers.get("retryx-pushback")


def test_a_header_set_by_the_app_is_kept(served: Callable[..., str]) -> None:
    """The application's own ``Retryx-Pushback`` wins and is not doubled."""
    response = fetch(served() + "/own-header")
    assert ["30"] == response.headers.get_list("retryx-pushback")


def test_scopes_do_not_leak_between_requests(served: Callable[..., str]) -> None:
    """After a request that gave up, the next plain 500 carries no pushback."""
    url = served()
    assert "no-retry" == fetch(url + "/gave-up").headers.get("retryx-pushback")
    assert fetch(url + "/plain-500").headers.get("retryx-pushback") is None


def test_async_handlers_report_into_the_scope() -> None:
    """An async retry layer that gives up inside an ASGI handler is seen too."""
    with _http_apps.serve_asgi(retryx.asgi.Middleware(_http_apps.asgi_app)) as url:
        assert "no-retry" == fetch(url + "/async-gave-up").headers.get("retryx-pushback")


def test_wsgi_generator_apps_are_covered() -> None:
    """A WSGI app that calls ``start_response`` while its body is iterated gets the header."""
    with _http_apps.serve_wsgi(retryx.wsgi.Middleware(_http_apps.wsgi_app)) as url:
        response = fetch(url + "/generator")
        assert (502, "no-retry") == (response.status_code, response.headers.get("retryx-pushback"))


def test_wsgi_write_callable_sends_the_header() -> None:
    """A WSGI app using the legacy ``write()`` callable gets the header too."""
    with _http_apps.serve_wsgi(retryx.wsgi.Middleware(_http_apps.wsgi_app)) as url:
        response = fetch(url + "/write")
        assert (503, "no-retry", b"done") == (
            response.status_code,
            response.headers.get("retryx-pushback"),
            response.content,
        )


def test_a_retryx_client_stops_at_the_pushback(served: Callable[..., str]) -> None:
    """The caller's retryx transport takes ``no-retry`` as final: one request, not three."""
    transport = retryx.httpx.Transport(retryx.Policy(attempts=3, backoff="none"), breakers=False)
    with httpx.Client(transport=transport, timeout=5.0) as client:
        url = served()
        assert 503 == client.get(url + "/gave-up").status_code
        host = url.split("//")[1]
        assert (1, {"pushback": 1}) == (
            transport.stats(host).attempts,
            transport.stats(host).by_cause,
        )


@pytest.mark.parametrize("middleware", [retryx.asgi.Middleware, retryx.wsgi.Middleware])
@pytest.mark.parametrize("bad", [-1, "soon", float("nan"), True])
def test_bad_pushback_is_a_config_error(middleware: Any, bad: Any) -> None:
    """A negative, non-numeric or NaN ``pushback`` is a ConfigError naming it."""
    with pytest.raises(ConfigError, match="pushback"):
        middleware(_http_apps.wsgi_app, pushback=bad)


def test_pushback_accepts_a_timedelta() -> None:
    """``pushback=timedelta(seconds=3)`` is 3 seconds."""
    middleware = retryx.asgi.Middleware(_http_apps.asgi_app, pushback=datetime.timedelta(seconds=3))
    assert 3.0 == middleware.pushback


def test_asgi_app_raising_after_a_give_up_answers_500_with_pushback() -> None:
    """An ASGI app that raises after its retry layer gave up still tells the caller."""
    with _http_apps.serve_asgi(retryx.asgi.Middleware(_http_apps.asgi_app)) as url:
        response = fetch(url + "/raises")
        assert (500, "no-retry") == (response.status_code, response.headers.get("retryx-pushback"))


def test_asgi_scopes_other_than_http_pass_through() -> None:
    """A lifespan scope reaches the app untouched, without a request scope."""
    seen: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope)
        await send({"type": "lifespan.startup.complete"})

    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "lifespan.startup"}

    asyncio.run(retryx.asgi.Middleware(app)({"type": "lifespan"}, receive, send))
    assert ([{"type": "lifespan"}], [{"type": "lifespan.startup.complete"}]) == (seen, sent)


def test_the_middlewares_need_no_third_party_package() -> None:
    """``retryx.asgi`` and ``retryx.wsgi`` load lazily from ``retryx`` and import no client
    or server package."""
    code = (
        "import sys, retryx;"
        "retryx.asgi.Middleware, retryx.wsgi.Middleware;"
        "loaded = {'httpx', 'requests', 'urllib3', 'uvicorn', 'starlette'} & set(sys.modules);"
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
