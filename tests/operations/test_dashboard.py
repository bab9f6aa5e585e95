"""The operations dashboard in a real headless browser (Debian's chromium, driven by Selenium through
chromium-driver), against a live gateway with traffic, a personal runtime and two accounts: live
numbers appear, each key sees what it may, the page's strict CSP holds (nothing is refused while it
works, an injected inline script is), and a screenshot is kept in build/.

Chromium runs as the machines' docs say: headless, no sandbox (root in a container), no GPU, nothing
fetched from the network (the machine has none), a fresh profile per run."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from lattice.shim.dashboard_routes import DASHBOARD_CSP
from tests.gateway_process import REPO, GatewayProcess, start_gateway
from tests.personal_runtime_fixtures import (
    Daemon,
    EchoProvider,
    create_key,
    echo_daemon,
    gateway_env,
    runtime_status,
    stopping_daemons,
    wait_for,
)

pytestmark = pytest.mark.slow

ADMIN_KEY = "dashboard-admin-key-0123456789"
MODEL = "smollm2-135m-instruct"
SECRET_PROMPT = "the launch code is 7-4-1-9"
"""Sent in a chat: must never show on the dashboard."""
SCREENSHOT = REPO / "build" / "dashboard.png"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1400",
)
WAIT_SECONDS = 60


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return {**gateway_env(tmp_path_factory.mktemp("dashboard-db")), "LATTICE_API_KEY": ADMIN_KEY}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> Iterator[GatewayProcess]:
    process = start_gateway(tmp_path_factory.mktemp("dashboard"), **env)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def traffic(
    gateway: GatewayProcess, env: dict[str, str], echo: EchoProvider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str, Daemon]]:
    """Two accounts' keys; the first has a reachable personal runtime and made three requests (two
    chats on the model, one on its runtime) and one refused one; the second made one chat."""
    alice, bob = create_key(env, "acct_alice"), create_key(env, "acct_bob")
    with stopping_daemons() as started:
        daemon = echo_daemon(gateway, alice, echo, tmp_path_factory.mktemp("ctl"), started, "Alice's laptop")
        wait_for(lambda: runtime_status(gateway, alice, daemon.lattice_id) == "reachable", "the daemon to connect")
        for key, request_id, model, text in (
            (alice, "dash-alice-1", MODEL, SECRET_PROMPT),
            (alice, "dash-alice-2", MODEL, "Say hi."),
            (alice, "dash-alice-3", f"lattice:personal:{daemon.lattice_id}", "echo this"),
            (bob, "dash-bob-1", MODEL, "Say hello."),
        ):
            client = openai.OpenAI(base_url=gateway.http_url + "/v1", api_key=key, max_retries=0, timeout=120)
            client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": text}],
                max_tokens=4,
                extra_headers={"x-request-id": request_id},
            )
        with pytest.raises(openai.NotFoundError):
            openai.OpenAI(base_url=gateway.http_url + "/v1", api_key=alice, max_retries=0).chat.completions.create(
                model="no-such-model", messages=[{"role": "user", "content": "hi"}]
            )
        yield alice, bob, daemon


def snapshot(gateway: GatewayProcess, key: str | None) -> httpx.Response:
    return httpx.get(gateway.http_url + "/v1/dashboard", headers={"x-api-key": key} if key else {}, timeout=30)


def test_each_key_sees_its_own_account_and_the_admin_key_every_account(
    gateway: GatewayProcess, traffic: tuple[str, str, Daemon]
) -> None:
    alice, bob, daemon = traffic
    mine = snapshot(gateway, alice).json()
    assert (mine["scope"], mine["accountId"]) == ("account", "acct_alice")
    assert [m["model"]["id"] for m in mine["models"]] == [MODEL]
    assert mine["models"][0]["state"] == "resident"
    assert [r["requestId"] for r in mine["recentRequests"]][1:] == ["dash-alice-3", "dash-alice-2", "dash-alice-1"]
    refused = mine["recentRequests"][0]
    assert (refused["model"], refused["status"]) == ("no-such-model", "model_not_found")
    relayed = mine["recentRequests"][1]
    assert (relayed["backend"], relayed["status"]) == ("relay", "ok")
    assert int(relayed["completionTokens"]) > 0
    assert [(r["latticeId"], r["status"]) for r in mine["personalRuntimes"]] == [(daemon.lattice_id, "reachable")]
    assert sum(int(b.get("requests", 0)) for b in mine["activity"]) == 4
    assert SECRET_PROMPT not in json.dumps(mine)

    theirs = snapshot(gateway, bob).json()
    assert [r["requestId"] for r in theirs["recentRequests"]] == ["dash-bob-1"]
    assert "personalRuntimes" not in theirs  # proto3 JSON: an empty list is left out

    everyone = snapshot(gateway, ADMIN_KEY).json()
    assert everyone["scope"] == "gateway"
    assert {r["requestId"] for r in everyone["recentRequests"]} >= {"dash-alice-1", "dash-bob-1"}
    assert {r["accountId"] for r in everyone["recentRequests"]} >= {"acct_alice", "acct_bob"}

    nobody = snapshot(gateway, None)
    assert (nobody.status_code, nobody.json()["error"]["code"]) == (401, "api_key_missing")
    forged = snapshot(gateway, "sk_not_a_real_key")
    assert forged.status_code == 401


def test_the_page_and_its_files_are_served_under_a_strict_policy(gateway: GatewayProcess) -> None:
    page = httpx.get(gateway.http_url + "/dashboard")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == DASHBOARD_CSP
    assert "'unsafe-inline'" not in DASHBOARD_CSP and "script-src 'self'" in DASHBOARD_CSP
    assert "<script>" not in page.text and "style=" not in page.text  # nothing inline for the policy to allow
    assert "http://" not in page.text and "https://" not in page.text  # nothing from elsewhere
    for name, media in (
        ("dashboard.js", "text/javascript"),
        ("dashboard.css", "text/css"),
        ("favicon.svg", "image/svg"),
    ):
        served = httpx.get(f"{gateway.http_url}/dashboard/static/{name}")
        assert served.status_code == 200 and served.headers["content-type"].startswith(media), name
    missing = httpx.get(f"{gateway.http_url}/dashboard/static/..%2Fapp.py")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    assert shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER), "make system-packages installs chromium"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def text(driver: webdriver.Chrome, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


def console_errors(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    """Browser console entries at error level (a CSP refusal is one); reading them empties the log."""
    entries: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return [entry for entry in entries if entry["level"] == "SEVERE"]


def test_the_dashboard_shows_live_numbers_in_a_real_browser(
    gateway: GatewayProcess, traffic: tuple[str, str, Daemon], browser: webdriver.Chrome
) -> None:
    alice, _bob, daemon = traffic
    browser.get(f"{gateway.http_url}/dashboard#key={alice}")
    wait = WebDriverWait(browser, WAIT_SECONDS)
    wait.until(lambda d: text(d, "total-requests").isdigit() and int(text(d, "total-requests")) > 0)
    wait.until(lambda d: MODEL in text(d, "models") and "dash-alice-1" in text(d, "recent"))
    assert "#key" not in browser.current_url  # the key left the address bar

    assert text(browser, "total-requests") == "4"
    assert text(browser, "total-failed") == "1"
    assert "resident" in text(browser, "models")
    runtimes = text(browser, "runtimes")
    assert daemon.lattice_id in runtimes and "Alice's laptop" in runtimes and "reachable" in runtimes
    recent = text(browser, "recent")
    assert "model_not_found" in recent and "dash-bob-1" not in recent
    assert SECRET_PROMPT not in browser.page_source
    assert text(browser, "scope") == "account acct_alice"
    assert browser.find_elements(By.CSS_SELECTOR, "#throughput-chart rect.bar")  # the chart was drawn
    assert browser.find_elements(By.CSS_SELECTOR, "#latency-chart .line")
    assert text(browser, "csp-violations") == "0"
    assert console_errors(browser) == []  # no CSP refusal, no failed load, no script error

    SCREENSHOT.parent.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOT))
    assert SCREENSHOT.read_bytes().startswith(b"\x89PNG") and SCREENSHOT.stat().st_size > 10_000


def test_the_admin_key_sees_every_account_and_a_bad_key_gets_the_form(
    gateway: GatewayProcess, traffic: tuple[str, str, Daemon], browser: webdriver.Chrome
) -> None:
    browser.get(f"{gateway.http_url}/dashboard#key={ADMIN_KEY}")
    wait = WebDriverWait(browser, WAIT_SECONDS)
    wait.until(lambda d: "dash-bob-1" in text(d, "recent") and "dash-alice-1" in text(d, "recent"))
    assert text(browser, "scope") == "every account (admin key)"
    assert "acct_alice" in text(browser, "recent")  # the account column is shown

    browser.get(f"{gateway.http_url}/dashboard#key=sk_wrong")
    wait.until(lambda d: d.find_element(By.ID, "key-form").is_displayed())
    assert not browser.find_element(By.ID, "board").is_displayed()
    assert "key" in text(browser, "status").lower()
    # The server refused the key (401); the browser logs the failed fetch, and nothing else.
    assert all("401" in entry["message"] for entry in console_errors(browser))


def test_the_policy_refuses_an_injected_inline_script(gateway: GatewayProcess, browser: webdriver.Chrome) -> None:
    browser.get(f"{gateway.http_url}/dashboard#key={ADMIN_KEY}")
    WebDriverWait(browser, WAIT_SECONDS).until(lambda d: d.find_element(By.ID, "board").is_displayed())
    console_errors(browser)  # start from an empty log
    browser.execute_script(
        "const s = document.createElement('script'); s.textContent = 'window.injected = 1';document.body.append(s);"
    )
    WebDriverWait(browser, WAIT_SECONDS).until(lambda d: text(d, "csp-violations") == "1")
    assert browser.execute_script("return window.injected") is None
    assert any("Content Security Policy" in entry["message"] for entry in console_errors(browser))
