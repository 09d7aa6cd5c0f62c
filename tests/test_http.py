"""HTTP(S) and TCP probes against real local servers the tests start on 127.0.0.1, port 0.

Names resolve through a resolver injected in the probe context (``probe.test`` is
127.0.0.1), so DNS timing and DNS failures are tested without any DNS server. The HTTPS
server uses a self-signed certificate for ``probe.test`` made here with ``openssl``,
valid for 5 days; a second HTTPS site presents one for the address 127.0.0.1
(tests/tls_kit.py), for runs in another process (``linkwatch probe --once``,
``linkwatch run``), which resolve names for real. ``/delay/<ms>`` answers after that long.

A response's timing is followed from the probe through the stored sample to the link
page: the time a user waits is the probe's rtt, its phases are stored with the sample,
a slow response is degraded by the response-time thresholds, and the link page shows
the phases of the last check.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import pytest_asyncio
import yaml
from aiohttp import web
from psycopg.rows import tuple_row

from collector import Database, write_samples
from collector.deriver import StateDeriver
from collector.embedded import EmbeddedPostgres
from collector.series import LatestCheck
from kernel.config import HttpProbe, Link, TcpProbe, parse_config
from kernel.domain import LinkStatus, Outcome, Sample
from kernel.errors import ConfigError
from portal.link_views import PhasesView, phases_view
from probes import PROBES, ProbeContext, Scheduler
from probes.http import probe_http
from probes.tcp import probe_tcp
from sla.report import contract_windows
from tests.helpers import (
    FAST_HASHER,
    browser,
    cell,
    element,
    elements,
    free_port,
    linkwatch,
    login,
    probe_row,
    section,
    start_linkwatch,
    stopped_after,
    table_row,
    wait_for,
    words,
)
from tests.portal_kit import CONFIG_TEXT, portal_config, running_portal
from tests.tls_kit import self_signed

HOST = "probe.test"
BIG_BODY = b"a" * (1024 * 1024 + 10) + b"needle"


async def loopback_resolver(host: str) -> Sequence[str]:
    if host != HOST:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return ["127.0.0.1"]


async def failing_resolver(host: str) -> Sequence[str]:
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


CTX = ProbeContext(icmp_privileged=None, resolver=loopback_resolver)


@dataclass(frozen=True)
class Servers:
    http_port: int
    https_port: int
    ca_file: Path
    ip_https_port: int  # presents a certificate for 127.0.0.1 ...
    ip_ca_file: Path  # ... which is this file

    def http(self, path: str) -> str:
        return f"http://{HOST}:{self.http_port}{path}"

    def https(self, path: str) -> str:
        return f"https://{HOST}:{self.https_port}{path}"

    def ip_https(self, path: str) -> str:
        return f"https://127.0.0.1:{self.ip_https_port}{path}"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec",
            "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(key), "-out", str(cert), "-days", "5",
            "-subj", f"/CN={HOST}", "-addext", f"subjectAltName=DNS:{HOST}",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text="all ok, version 1.2.3")


async def _status(request: web.Request) -> web.Response:
    return web.Response(status=int(request.match_info["code"]), text="status page")


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(2)
    return web.Response(text="too late")


async def _redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("/ok")


async def _redirect_to_slow(request: web.Request) -> web.Response:
    raise web.HTTPFound("/delay/1500")


async def _loop(request: web.Request) -> web.Response:
    raise web.HTTPFound("/loop")


async def _method(request: web.Request) -> web.Response:
    return web.Response(status=201 if request.method == "POST" else 200, text=request.method)


async def _big(request: web.Request) -> web.Response:
    return web.Response(body=BIG_BODY)


async def _delay(request: web.Request) -> web.Response:
    """Answers after the given ms: the server, not the network, is slow."""
    await asyncio.sleep(int(request.match_info["ms"]) / 1000)
    return web.Response(text="ok, eventually")


@pytest_asyncio.fixture(scope="module")
async def servers(certificate: tuple[Path, Path]) -> AsyncIterator[Servers]:
    app = web.Application()
    app.router.add_get("/ok", _ok)
    app.router.add_get("/status/{code}", _status)
    app.router.add_get("/slow", _slow)
    app.router.add_get("/redirect", _redirect)
    app.router.add_get("/loop", _loop)
    app.router.add_get("/redirect-to-slow", _redirect_to_slow)
    app.router.add_route("*", "/method", _method)
    app.router.add_get("/big", _big)
    app.router.add_get("/delay/{ms:\\d+}", _delay)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    cert, key = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    (cert.parent / "ip").mkdir(exist_ok=True)
    ip_cert, ip_tls = self_signed(cert.parent / "ip")
    plain = web.TCPSite(runner, "127.0.0.1", 0)
    secure = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_tls)
    secure_ip = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ip_tls)
    for site in (plain, secure, secure_ip):
        await site.start()
    yield Servers(_port(plain), _port(secure), cert, _port(secure_ip), ip_cert)
    await runner.cleanup()


def _port(site: web.TCPSite) -> int:
    server = site._server
    assert isinstance(server, asyncio.Server)
    return int(server.sockets[0].getsockname()[1])


def http(url: str, **extra: Any) -> HttpProbe:
    return HttpProbe.model_validate(
        {"id": "web", "kind": "http", "url": url, "interval": "30s", "timeout": "2s", **extra}
    )


# --- HTTP --------------------------------------------------------------------------------


async def test_200_is_up_with_every_phase_timed_in_order(servers: Servers) -> None:
    spec = http(servers.https("/ok"), ca_file=str(servers.ca_file), cert_warn_days=0)
    result = await probe_http(spec, CTX)
    assert result.outcome is Outcome.UP, result.error
    phases = result.phases_ms
    assert list(phases) == ["dns", "connect", "tls", "first_byte", "total"]
    assert 0 < phases["dns"] < phases["connect"] < phases["tls"]
    assert phases["tls"] < phases["first_byte"] <= phases["total"] < 2000
    assert result.rtt_ms == phases["total"]  # what a user of the site waits for
    assert result.error is None


async def test_plain_http_has_no_tls_phase_and_an_ip_url_no_dns_phase(servers: Servers) -> None:
    result = await probe_http(http(f"http://127.0.0.1:{servers.http_port}/ok"), CTX)
    assert result.outcome is Outcome.UP, result.error
    assert list(result.phases_ms) == ["connect", "first_byte", "total"]


async def test_every_run_opens_a_fresh_connection(servers: Servers) -> None:
    results = [await probe_http(http(servers.http("/ok")), CTX) for _ in range(3)]
    assert all("connect" in r.phases_ms for r in results)  # no run reused one


async def test_500_is_down_naming_the_status(servers: Servers) -> None:
    result = await probe_http(http(servers.http("/status/500")), CTX)
    assert result.outcome is Outcome.DOWN
    assert result.error == "status 500 (expected 200-399)"


async def test_an_explicit_status_list_is_named_in_the_error(servers: Servers) -> None:
    result = await probe_http(http(servers.http("/ok"), expect_status=[204, 301, 302]), CTX)
    assert result.outcome is Outcome.DOWN
    assert result.error == "status 200 (expected 204, 301-302)"


async def test_a_server_slower_than_the_timeout_is_down_with_timeout(servers: Servers) -> None:
    result = await probe_http(http(servers.http("/slow"), timeout="300ms"), CTX)
    assert result.outcome is Outcome.DOWN
    assert result.error == "timeout after 300ms (waiting for response)"
    assert "connect" in result.phases_ms
    assert "first_byte" not in result.phases_ms


async def test_body_keyword(servers: Servers) -> None:
    good = await probe_http(http(servers.http("/ok"), body_contains="all ok"), CTX)
    assert good.outcome is Outcome.UP, good.error
    bad = await probe_http(http(servers.http("/ok"), body_contains="ready"), CTX)
    assert bad.outcome is Outcome.DOWN
    assert bad.error == "body does not contain 'ready'"


async def test_body_regex(servers: Servers) -> None:
    good = await probe_http(http(servers.http("/ok"), body_regex=r"version \d+\.\d+"), CTX)
    assert good.outcome is Outcome.UP, good.error
    bad = await probe_http(http(servers.http("/ok"), body_regex=r"^error"), CTX)
    assert bad.outcome is Outcome.DOWN
    assert bad.error == "body does not match '^error'"


async def test_only_the_first_mib_of_a_body_is_searched(servers: Servers) -> None:
    result = await probe_http(http(servers.http("/big"), body_contains="needle"), CTX)
    assert result.outcome is Outcome.DOWN
    assert result.error == "body does not contain 'needle' in the first 1 MiB"


async def test_redirects_are_followed_or_not_as_configured(servers: Servers) -> None:
    followed = await probe_http(http(servers.http("/redirect"), body_contains="all ok"), CTX)
    assert followed.outcome is Outcome.UP, followed.error
    kept = await probe_http(
        http(servers.http("/redirect"), follow_redirects=False, expect_status=[200]), CTX
    )
    assert kept.outcome is Outcome.DOWN
    assert kept.error == "status 302 (expected 200)"


async def test_a_redirect_loop_is_down(servers: Servers) -> None:
    result = await probe_http(http(servers.http("/loop")), CTX)
    assert result.outcome is Outcome.DOWN
    assert result.error == "too many redirects"


async def test_head_and_post(servers: Servers) -> None:
    head = await probe_http(http(servers.http("/method"), method="HEAD", expect_status=[200]), CTX)
    assert head.outcome is Outcome.UP, head.error
    post = await probe_http(
        http(servers.http("/method"), method="POST", expect_status=[201], body_contains="POST"),
        CTX,
    )
    assert post.outcome is Outcome.UP, post.error


async def test_self_signed_without_verification_is_degraded_by_its_expiry(
    servers: Servers,
) -> None:
    result = await probe_http(http(servers.https("/ok"), tls_verify=False), CTX)
    assert result.outcome is Outcome.DEGRADED
    assert result.error == "certificate expires in 5 days"
    assert 4.9 < result.metrics["cert_days_left"] <= 5


async def test_self_signed_with_verification_is_down_with_a_tls_error(servers: Servers) -> None:
    result = await probe_http(http(servers.https("/ok")), CTX)
    assert result.outcome is Outcome.DOWN
    assert result.error is not None
    assert result.error.startswith("tls: certificate verify failed: self-signed certificate")
    assert "tls" not in result.phases_ms


async def test_a_pinned_ca_file_verifies_and_the_expiry_still_warns(servers: Servers) -> None:
    result = await probe_http(http(servers.https("/ok"), ca_file=str(servers.ca_file)), CTX)
    assert result.outcome is Outcome.DEGRADED
    assert result.error == "certificate expires in 5 days"
    quiet = await probe_http(
        http(servers.https("/ok"), ca_file=str(servers.ca_file), cert_warn_days=4), CTX
    )
    assert quiet.outcome is Outcome.UP, quiet.error


async def test_a_pinned_ca_for_another_name_is_a_tls_error(servers: Servers) -> None:
    async def other_name(host: str) -> Sequence[str]:
        return ["127.0.0.1"]

    ctx = ProbeContext(icmp_privileged=None, resolver=other_name)
    url = f"https://other.test:{servers.https_port}/ok"
    result = await probe_http(http(url, ca_file=str(servers.ca_file)), ctx)
    assert result.outcome is Outcome.DOWN
    assert result.error is not None
    assert result.error.startswith("tls: certificate verify failed: Hostname mismatch")


async def test_https_to_a_plain_http_port_is_a_tls_error(servers: Servers) -> None:
    url = f"https://{HOST}:{servers.http_port}/ok"
    result = await probe_http(http(url, tls_verify=False), CTX)
    assert result.outcome is Outcome.DOWN
    assert result.error is not None
    assert result.error.startswith("tls: ")


async def test_connection_refused_is_down() -> None:
    result = await probe_http(http(f"http://127.0.0.1:{free_port()}/"), CTX)
    assert result.outcome is Outcome.DOWN
    assert result.error == "connection refused"


async def test_a_name_the_monitor_cannot_resolve_is_unknown_not_down() -> None:
    ctx = ProbeContext(icmp_privileged=None, resolver=failing_resolver)
    result = await probe_http(http("http://nowhere.test/"), ctx)
    assert result.outcome is Outcome.UNKNOWN
    assert result.error == "dns: cannot resolve nowhere.test (Name or service not known)"


async def test_an_unreadable_ca_file_is_the_monitors_problem_not_the_targets(
    servers: Servers, tmp_path: Path
) -> None:
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text("not a certificate")
    result = await probe_http(http(servers.https("/ok"), ca_file=str(ca_file)), CTX)
    assert result.outcome is Outcome.UNKNOWN
    assert result.error is not None
    assert result.error.startswith(f"ca_file {ca_file}: ")


def test_registry_runs_http_probes() -> None:
    assert PROBES["http"] is probe_http


# --- config ------------------------------------------------------------------------------


def _config_problems(probe: dict[str, Any]) -> list[str]:
    document = {
        "customers": [{"id": "c", "name": "C"}],
        "links": [{"id": "l", "customer": "c", "probes": [{"id": "web", "kind": "http", **probe}]}],
    }
    with pytest.raises(ConfigError) as info:
        parse_config(yaml.safe_dump(document), environ={})
    return [f"{p.path}: {p.message}" for p in info.value.problems]


def test_config_rejects_a_ca_file_that_verification_would_ignore(tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text("x")
    assert _config_problems(
        {"url": "https://127.0.0.1/", "tls_verify": False, "ca_file": str(ca_file)}
    ) == [
        f"links[0].probes[0]: ca_file '{ca_file}' is set but tls_verify is false, so it "
        "would be ignored; drop one of them"
    ]


def test_config_rejects_a_missing_ca_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    assert _config_problems({"url": "https://127.0.0.1/", "ca_file": str(missing)}) == [
        f"links[0].probes[0]: ca_file '{missing}' is not a file; give the path of a PEM file "
        "with the CA certificate(s) to trust"
    ]


def test_config_rejects_a_body_check_on_head() -> None:
    assert _config_problems(
        {"url": "http://127.0.0.1/", "method": "HEAD", "body_contains": "ok"}
    ) == [
        "links[0].probes[0]: a HEAD response has no body to check; use method GET, or drop "
        "body_contains and body_regex"
    ]


# --- TCP ---------------------------------------------------------------------------------


def tcp(host: str, port: int, timeout: str = "2s") -> TcpProbe:
    return TcpProbe.model_validate(
        {"id": "tcp", "kind": "tcp", "host": host, "port": port, "timeout": timeout}
    )


async def test_tcp_by_name_times_dns_then_connect(servers: Servers) -> None:
    result = await probe_tcp(tcp(HOST, servers.http_port), CTX)
    assert result.outcome is Outcome.UP, result.error
    assert list(result.phases_ms) == ["dns", "connect"]
    assert 0 < result.phases_ms["dns"] < result.phases_ms["connect"]
    assert result.rtt_ms == pytest.approx(result.phases_ms["connect"] - result.phases_ms["dns"])


async def test_tcp_name_the_monitor_cannot_resolve_is_unknown_not_down() -> None:
    ctx = ProbeContext(icmp_privileged=None, resolver=failing_resolver)
    result = await probe_tcp(tcp("nowhere.test", 80), ctx)
    assert result.outcome is Outcome.UNKNOWN
    assert result.error == "dns: cannot resolve nowhere.test (Name or service not known)"


async def test_tcp_to_a_port_that_never_answers_is_down_with_timeout() -> None:
    # A listener that never accepts, with its accept queue filled: Linux then drops
    # further SYNs, so the next connect hangs, as behind a black-holing firewall.
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            fillers.append(filler)
            with contextlib.suppress(BlockingIOError):  # completes in the background
                filler.connect(("127.0.0.1", port))
        result = await probe_tcp(tcp("127.0.0.1", port, timeout="200ms"), CTX)
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
    assert result.outcome is Outcome.DOWN
    assert result.error == "timeout after 200ms (connect)"


# --- response time and phases: measured, stored, judged, shown ---------------------------

PHASE_METRICS = ["dns_ms", "connect_ms", "tls_ms", "first_byte_ms", "total_ms"]


def web_link(probe: dict[str, Any], **link: Any) -> Link:
    spec = {"id": "web", "kind": "http", "interval": "30s", "timeout": "2s", **probe}
    return Link.model_validate({"id": "shop", "customer": "c", "probes": [spec], **link})


async def _discard(sample: Sample) -> None:
    return None


async def run_once(link: Link, ctx: ProbeContext = CTX) -> Sample:
    """One run as the scheduler makes it (deadline, thresholds), as `probe --once` does."""
    return await Scheduler([link], _discard, ctx).run_once(link, link.probes[0], probe_http)


async def test_a_delayed_answer_is_the_rtt_and_every_phase_is_kept(servers: Servers) -> None:
    spec = http(servers.https("/delay/1500"), ca_file=str(servers.ca_file), cert_warn_days=0)
    result = await probe_http(spec, CTX)
    assert result.outcome is Outcome.UP, result.error
    phases = result.phases_ms
    assert list(phases) == ["dns", "connect", "tls", "first_byte", "total"]
    # The server held its answer 1.5 s: that is the response time, not the handshake.
    assert 1500 <= phases["first_byte"] <= phases["total"] < 2000
    assert result.rtt_ms == phases["total"]
    assert phases["connect"] - phases["dns"] < 100  # the TCP handshake on loopback
    assert list(result.metrics) == [*PHASE_METRICS, "cert_days_left"]
    assert all(result.metrics[f"{name}_ms"] == round(at, 3) for name, at in phases.items())


async def test_the_phases_are_stored_with_the_sample(servers: Servers, database: Database) -> None:
    link = web_link(
        {"url": servers.https("/delay/1500"), "ca_file": str(servers.ca_file), "cert_warn_days": 0}
    )
    sample = await run_once(link)
    await write_samples(database, [sample])
    async with database.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute("SELECT outcome, rtt_ms, metrics FROM samples WHERE link_id = 'shop'")
        rows = await cur.fetchall()
    assert len(rows) == 1
    outcome, rtt_ms, metrics = rows[0]
    assert outcome == "up"
    assert 1500 <= rtt_ms < 2000
    assert rtt_ms == pytest.approx(metrics["total_ms"], abs=0.001)
    assert 1500 <= metrics["first_byte_ms"] <= metrics["total_ms"]
    milestones = [metrics[name] for name in PHASE_METRICS]
    assert milestones == sorted(milestones)
    assert 0 < metrics["connect_ms"] - metrics["dns_ms"] < 100


async def test_probe_once_prints_the_response_time_and_its_phases(
    servers: Servers, tmp_path: Path
) -> None:
    config = tmp_path / "linkwatch.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "customers": [{"id": "c", "name": "C"}],
                "links": [
                    {
                        "id": "shop",
                        "customer": "c",
                        "probes": [
                            {
                                "id": "web",
                                "kind": "http",
                                "url": servers.ip_https("/delay/1500"),
                                "ca_file": str(servers.ip_ca_file),
                                "cert_warn_days": 0,
                                "timeout": "3s",
                                "response_ms": 1000,
                            }
                        ],
                    }
                ],
            }
        )
    )
    result = await asyncio.to_thread(
        linkwatch, "probe", "--once", "--config", str(config), "--format", "json"
    )
    assert result.returncode == 0, result.stderr
    [printed] = json.loads(result.stdout)
    assert printed["outcome"] == "degraded"
    assert 1500 <= printed["rtt_ms"] < 3000
    assert re.fullmatch(r"response 1\d{3}\.\dms >= 1000ms", printed["error"])
    # An address, not a name: no DNS phase; https: a TLS one.
    phases = [name for name in printed["metrics"] if name.endswith("_ms")]
    assert phases == ["connect_ms", "tls_ms", "first_byte_ms", "total_ms"]
    assert printed["metrics"]["total_ms"] == pytest.approx(printed["rtt_ms"], abs=0.001)


@pytest.mark.parametrize(
    ("probe", "thresholds", "delay_ms", "outcome", "error"),
    [
        pytest.param({"response_ms": 200}, {}, 0, Outcome.UP, None, id="fast"),
        pytest.param(
            {"response_ms": 200}, {}, 300, Outcome.DEGRADED, r"response 3\d\d\.\dms >= 200ms",
            id="slow",
        ),
        pytest.param(
            {}, {"response_ms": 200}, 300, Outcome.DEGRADED, r"response 3\d\d\.\dms >= 200ms",
            id="the-links-threshold",
        ),
        pytest.param(
            {"response_ms": 1000}, {"response_ms": 200}, 300, Outcome.UP, None,
            id="the-probes-own-wins",
        ),
        # The link's RTT threshold is the network's round trip (ICMP, TCP): a response
        # time is not measured against it.
        pytest.param({}, {"rtt_ms": 1}, 300, Outcome.UP, None, id="not-the-links-rtt"),
    ],
)  # fmt: skip
async def test_a_slow_response_is_degraded_by_the_response_threshold(
    servers: Servers,
    probe: dict[str, Any],
    thresholds: dict[str, Any],
    delay_ms: int,
    outcome: Outcome,
    error: str | None,
) -> None:
    link = web_link({"url": servers.http(f"/delay/{delay_ms}"), **probe}, thresholds=thresholds)
    sample = await run_once(link)
    assert sample.outcome is outcome, sample.error
    assert sample.outcome.available
    if error is None:
        assert sample.error is None
    else:
        assert sample.error is not None
        assert re.fullmatch(error, sample.error), sample.error


async def test_a_response_slower_than_the_timeout_is_still_down(servers: Servers) -> None:
    link = web_link({"url": servers.http("/delay/1500"), "timeout": "500ms", "response_ms": 200})
    sample = await run_once(link)
    assert sample.outcome is Outcome.DOWN
    assert sample.error == "timeout after 500ms (waiting for response)"
    assert sample.rtt_ms is None  # no response, so no response time
    assert "first_byte_ms" not in sample.metrics
    assert "connect_ms" in sample.metrics  # how far it got


async def test_a_slow_response_and_an_expiring_certificate_are_both_named(
    servers: Servers,
) -> None:
    link = web_link(
        {"url": servers.https("/delay/300"), "ca_file": str(servers.ca_file), "response_ms": 200}
    )
    sample = await run_once(link)
    assert sample.outcome is Outcome.DEGRADED
    assert sample.error is not None
    assert re.fullmatch(
        r"certificate expires in 5 days; response 3\d\d\.\dms >= 200ms", sample.error
    ), sample.error


async def test_after_a_redirect_the_connection_phases_are_the_first_requests(
    servers: Servers,
) -> None:
    result = await probe_http(http(servers.http("/redirect")), CTX)
    assert result.outcome is Outcome.UP, result.error
    phases = result.phases_ms
    # The final request's own lookup and connect lie between redirect and first_byte.
    assert list(phases) == ["dns", "connect", "redirect", "first_byte", "total"]
    assert list(phases.values()) == sorted(phases.values())
    assert result.metrics["redirects"] == 1
    assert result.rtt_ms == phases["total"]


async def test_a_redirect_to_a_slow_page_times_out_naming_the_redirect(
    servers: Servers,
) -> None:
    result = await probe_http(http(servers.http("/redirect-to-slow"), timeout="500ms"), CTX)
    assert result.outcome is Outcome.DOWN
    assert result.error == "timeout after 500ms (following a redirect)"
    assert list(result.phases_ms) == ["dns", "connect", "redirect"]
    assert result.rtt_ms is None


async def test_every_run_makes_its_own_tls_handshake(servers: Servers) -> None:
    spec = http(servers.https("/ok"), ca_file=str(servers.ca_file), cert_warn_days=0)
    results = [await probe_http(spec, CTX) for _ in range(3)]
    # A reused connection would have no connect and no TLS phase of its own.
    assert all(list(r.phases_ms)[:3] == ["dns", "connect", "tls"] for r in results)
    assert all(r.phases_ms["tls"] > r.phases_ms["connect"] for r in results)


def test_config_rejects_a_response_threshold_at_or_over_the_timeout() -> None:
    assert _config_problems({"url": "http://127.0.0.1/", "timeout": "2s", "response_ms": 2000}) == [
        "links[0].probes[0]: response_ms 2000 is not below the timeout of probe 'web' (2s): "
        "a response that slow is down (timeout), never degraded; use a value under 2000"
    ]


def _link_problems(link: dict[str, Any]) -> list[str]:
    document = {
        "customers": [{"id": "c", "name": "C"}],
        "links": [{"id": "l", "customer": "c", **link}],
    }
    with pytest.raises(ConfigError) as info:
        parse_config(yaml.safe_dump(document), environ={})
    return [f"{p.path}: {p.message}" for p in info.value.problems]


def test_config_rejects_a_links_response_threshold_over_a_probes_timeout() -> None:
    probe = {"id": "web", "kind": "http", "url": "http://127.0.0.1/", "timeout": "1s"}
    assert _link_problems({"thresholds": {"response_ms": 1500}, "probes": [probe]}) == [
        "links[0]: thresholds.response_ms 1500 is not below the timeout of probe 'web' (1s): "
        "a response that slow is down (timeout), never degraded; use a value under 1000"
    ]


def test_config_rejects_a_response_threshold_on_a_link_without_http() -> None:
    probe = {"id": "icmp", "kind": "icmp", "host": "127.0.0.1"}
    assert _link_problems({"thresholds": {"response_ms": 500}, "probes": [probe]}) == [
        "links[0]: thresholds.response_ms 500 applies to http probes and this link has none; "
        "drop it, or add an http probe"
    ]


def test_config_rejects_a_response_threshold_that_is_not_a_positive_number() -> None:
    assert _config_problems({"url": "http://127.0.0.1/", "response_ms": 0}) == [
        "links[0].probes[0].response_ms: 0: input should be greater than 0"
    ]


async def test_latency_objectives_measure_round_trips_not_http_responses(
    database: Database,
) -> None:
    config = parse_config(
        """
customers: [{id: acme, name: ACME, timezone: UTC}]
links:
  - id: shop
    customer: acme
    probes:
      - {id: icmp, kind: icmp, host: 127.0.0.1, interval: 1m}
      - {id: web, kind: http, url: "http://127.0.0.1/", interval: 1m}
contracts:
  - {id: gold, customer: acme, links: [shop], target: 99.5, window: week, fee: "100.00",
     currency: EUR, latency: {p95_ms: 40, credit: 5},
     effective_from: "2026-11-01T00:00:00Z"}
"""
    )
    start = datetime(2026, 11, 16, tzinfo=UTC)  # Monday of 2026-W47
    samples = []
    for minute in range(24 * 60):
        at = start + timedelta(minutes=minute)
        samples.append(Sample("shop", "icmp", at, Outcome.UP, rtt_ms=12.0, loss_pct=0.0))
        samples.append(Sample("shop", "web", at, Outcome.UP, rtt_ms=850.0))
    await write_samples(database, samples)
    await StateDeriver(database, config.links).samples_stored(samples)
    [window] = await contract_windows(database, config, "2026-W47", start + timedelta(days=1))
    [latency] = window.result.objectives
    assert latency.measured == 12.0  # the ICMP round trip; 850 ms pages are not latency
    assert latency.met is True
    assert latency.credit_pct == 0


async def test_the_link_page_shows_the_last_checks_phases(
    servers: Servers, database: Database
) -> None:
    text = CONFIG_TEXT.replace(
        "      - {id: icmp, kind: icmp, host: 127.0.0.1, interval: 60s}",
        "      - {id: icmp, kind: icmp, host: 127.0.0.1, interval: 60s}\n"
        f"      - {{id: web, kind: http, url: '{servers.ip_https('/delay/1500')}', "
        f"ca_file: '{servers.ip_ca_file}', cert_warn_days: 0, interval: 60s, timeout: 3s}}",
    )
    config = portal_config(text)
    link = config.link("acme-fra-1")
    now = datetime.now(UTC)
    async with running_portal(database, config, now=now, history=None) as kit:
        network = Sample("acme-fra-1", "icmp", now - timedelta(seconds=5), Outcome.UP,
                         rtt_ms=12.5, loss_pct=0.0)  # fmt: skip
        checked = await Scheduler([link], _discard, CTX).run_once(link, link.probes[1], probe_http)
        await kit.store([network, checked])
        kit.clock.now = datetime.now(UTC)
        await kit.sign_in("alice")
        html = await kit.page("/links/acme-fra-1?range=24h")
    phases = section(html, "Response phases of web")
    steps = element(phases, "table", "phase-steps")
    waited = checked.metrics["first_byte_ms"] - checked.metrics["tls_ms"]
    assert f"Response time {checked.rtt_ms:.0f}\u00a0ms" in words(phases)
    # An address, so nothing was looked up; then each step, what it took and when it ended.
    assert re.findall(r'<td data-label="Step">([^<]*)</td>', steps) == [
        "TCP connect", "TLS handshake", "Request and server response, to the first byte",
        "Body received",
    ]  # fmt: skip
    waiting = table_row(steps, "Request and server response")
    assert cell(waiting, "Took") == f"{waited:.0f}\u00a0ms"
    assert re.search(r'</section>\s*<p class="muted small">Each check opens a new connection', html)
    # The link's RTT is the network's; the HTTP probe's row says it is a response time.
    assert "RTT 12.5\u00a0ms" in words(element(html, "dl", "facts"))
    assert cell(probe_row(html, "web"), "Response") == f"{checked.rtt_ms:.0f}\u00a0ms response"
    titles = [words(t).strip() for t in elements(html, "span", "chart-title")]
    assert "Response time · web (http), last 24 hours" in titles
    assert "Response phases · web (http), last 24 hours" in titles
    assert "Round-trip time · web" not in words(html)


async def test_the_waterfall_of_a_redirected_and_of_a_timed_out_check(servers: Servers) -> None:
    link = web_link({"url": servers.http("/redirect")})
    now = datetime.now(UTC)

    def view(sample: Sample) -> PhasesView:
        check = LatestCheck("web", sample.observed_at, sample.outcome.value, sample.error,
                            sample.metrics)  # fmt: skip
        shown = phases_view(link, check, now, UTC)
        assert shown is not None
        return shown

    redirected = view(await run_once(link))
    assert [step.name for step in redirected.steps] == [
        "DNS lookup", "TCP connect", "1 redirect followed",
        "Request and server response, to the first byte", "Body received",
    ]  # fmt: skip
    assert redirected.notes == (
        "DNS, connect and TLS are the first request's; the final request's own connection "
        "is part of the time to the first byte.",
    )
    timed_out = view(await run_once(web_link({"url": servers.http("/slow"), "timeout": "300ms"})))
    assert timed_out.total is None
    assert [step.name for step in timed_out.steps] == ["DNS lookup", "TCP connect"]
    assert timed_out.notes == (
        "This check ended before a response was read: timeout after 300ms (waiting for response).",
    )
    assert timed_out.status is LinkStatus.DOWN


def _answers(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - loopback
            return bool(response.status == 200)
    except OSError:
        return False


def _stored_checks(data_dir: Path) -> list[tuple[str, float | None, dict[str, float]]]:
    """(outcome, rtt_ms, metrics) of the HTTP samples a running Linkwatch stored, read
    through its embedded server as a second process would."""
    url = EmbeddedPostgres(data_dir).start()  # shares the running server; leaves it running
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT outcome, rtt_ms, metrics FROM samples WHERE probe_id = 'web'"
            " ORDER BY observed_at"
        ).fetchall()
    return [(outcome, rtt, metrics or {}) for outcome, rtt, metrics in rows]


async def test_linkwatch_run_stores_a_slow_https_response_and_shows_its_phases(
    servers: Servers, pg_data_dir: Path
) -> None:
    """The issue as it was met: a server that takes 1.5 s to answer, probed by
    `linkwatch run` over TLS, stored, judged against a response-time threshold and read
    on the link page."""
    port = free_port()
    password = "shop-password"
    hashed = FAST_HASHER.hash(password)
    config = pg_data_dir / "linkwatch.yaml"
    config.write_text(
        f"""\
data_dir: {pg_data_dir}
portal: {{listen: "127.0.0.1:{port}"}}
customers:
  - {{id: shopco, name: Shop Co, timezone: UTC}}
links:
  - id: shop
    customer: shopco
    description: Web shop
    thresholds: {{rtt_ms: 50, response_ms: 1000}}
    probes:
      - {{id: icmp, kind: icmp, host: 127.0.0.1, interval: 2s, count: 1, timeout: 500ms}}
      - {{id: web, kind: http, url: "{servers.ip_https("/delay/1500")}",
          ca_file: "{servers.ip_ca_file}", cert_warn_days: 0, interval: 3s, timeout: 2500ms}}
users:
  - {{name: shopco, role: customer, customer: shopco, password_hash: "{hashed}"}}
"""
    )
    log = pg_data_dir / "linkwatch.log"
    proc = start_linkwatch("run", "--config", str(config), log=log)
    with stopped_after(proc, log):

        def healthy() -> bool:  # once the portal answers, the database is migrated
            return _answers(f"http://127.0.0.1:{port}/healthz")

        def two_checks() -> bool:
            return len(_stored_checks(pg_data_dir)) >= 2

        await asyncio.to_thread(wait_for, "the portal", healthy, 60, proc, log)
        await asyncio.to_thread(wait_for, "two HTTP samples", two_checks, 30, proc, log)
        checks = _stored_checks(pg_data_dir)
        for outcome, rtt_ms, metrics in checks:
            assert outcome == "degraded"  # slower than response_ms, faster than the timeout
            assert rtt_ms is not None
            assert 1500 <= rtt_ms < 2500
            assert rtt_ms == pytest.approx(metrics["total_ms"], abs=0.001)
            assert 1500 <= metrics["first_byte_ms"] <= metrics["total_ms"]
            assert metrics["connect_ms"] < metrics["tls_ms"] < 500
        async with browser() as session:
            await login(session, f"http://127.0.0.1:{port}", "shopco", password)
            async with session.get(f"http://127.0.0.1:{port}/links/shop") as response:
                assert response.status == 200
                phases = section(await response.text(), "Response phases of web")
        assert words(element(phases, "h3", "sub")).strip() == "Last check of web Degraded"
        assert re.search(r"Response time 1[5-9]\d\d\u00a0ms", words(phases)), phases
        steps = element(phases, "table", "phase-steps")
        assert cell(table_row(steps, "TLS handshake"), "Step") == "TLS handshake"
        waiting = table_row(steps, "Request and server response, to the first byte")
        assert cell(waiting, "Took").startswith("1")
    assert "Traceback" not in log.read_text()
