"""Drives Debian's chromium (through chromium-driver) over doorward's real
login flow, as tests/e2e/browser.rs sets it up: the chooser with two
providers, sign in at the real test OP, the app, the sign-out page, signed
out, a denied user, a failed login. Asserts the visible text and that the
browser logged no error on doorward's pages (a CSP violation is one), and
saves a screenshot of each page.

Usage: flow.py BASE_URL IDP_ISSUER SCREENSHOT_DIR
"""
import os
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

BASE, ISSUER, SHOTS = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
os.makedirs(SHOTS, exist_ok=True)

options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1024,768",
            "--disable-gpu", "--no-first-run", "--disable-extensions"]:
    options.add_argument(arg)
options.set_capability("goog:loggingPrefs", {"browser": "ALL"})


def start_browser():
    """Starts chromium through chromium-driver. On a loaded machine the first
    start can miss chromedriver's own deadline (DevToolsActivePort): one
    more try, then the error stands."""
    for attempt in range(2):
        try:
            return webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
        except Exception as error:  # selenium raises several kinds here
            if attempt == 1:
                raise
            print(f"browser start failed, trying once more: {error}", file=sys.stderr)


driver = start_browser()
# Deadlines are generous: the suite runs this beside other tests on 2 cores.
driver.set_page_load_timeout(60)
WAIT = 45


def text():
    return driver.find_element(By.TAG_NAME, "body").text


def expect(*wanted):
    body = text()
    for want in wanted:
        assert want in body, f"{want!r} not on {driver.current_url}:\n{body}"


def no_console_errors(where, status=None):
    """No script error, CSP violation or failed subresource. An error page
    itself answers with its status, which Chrome logs: that one is expected."""
    expected = f"the server responded with a status of {status} " if status else None
    errors = [
        e for e in driver.get_log("browser")
        if e["level"] == "SEVERE"
        and not (expected and e["source"] == "network" and expected in e["message"]
                 and e["message"].startswith(driver.current_url.split("?")[0]))
    ]
    assert not errors, f"console errors on {where}: {errors}"


def shot(name):
    driver.save_screenshot(os.path.join(SHOTS, f"{name}.png"))


def click_and_wait(button):
    """Clicks a form's button and waits for the page it leads to: the URL
    is read only once the old page is gone (a fast check saw it mid-way)."""
    button.click()
    WebDriverWait(driver, WAIT).until(EC.staleness_of(button))


def wait_for_url(url, step=None):
    """Waits until the browser is at `url`, calling `step` (if any) while it
    is still at the IdP; fails with where it is instead."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if driver.current_url == url:
            return
        if step and driver.current_url.startswith(ISSUER):
            step()
        else:
            time.sleep(0.1)
    raise AssertionError(f"not at {url} but {driver.current_url}:\n{text()}")


def sign_in_at_idp(user):
    """Fills the test OP's login (any password) and consent forms."""
    for _ in range(4):
        if not driver.current_url.startswith(ISSUER):
            return
        driver.get_log("browser")  # the IdP's own pages are not ours to judge
        for field, value in [("login", user), ("password", "any")]:
            inputs = driver.find_elements(By.NAME, field)
            if inputs:
                inputs[0].clear()
                inputs[0].send_keys(value)
        click_and_wait(driver.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    raise AssertionError(f"still at the IdP: {driver.current_url}")


try:
    # The chooser: two providers, the brand, the return-to kept.
    driver.get(BASE + "/dashboard")
    assert driver.current_url.startswith(BASE + "/_doorward/login"), driver.current_url
    expect("Sign in", "Choose how you want to sign in to Acme", "Sign in with Test IdP", "Sign in with Second IdP")
    assert driver.title == "Sign in · Acme", driver.title
    no_console_errors("the chooser")
    shot("1-chooser")

    click_and_wait(driver.find_element(By.LINK_TEXT, "Sign in with Test IdP"))
    sign_in_at_idp("alice")
    wait_for_url(BASE + "/dashboard")
    no_console_errors("the app")
    shot("2-app")

    # Sign-out: who, with which provider; Sign out / Cancel.
    driver.get(BASE + "/_doorward/logout")
    expect("Sign out?", "You are signed in as alice@example.com with Test IdP.", "Cancel")
    no_console_errors("the sign-out page")
    shot("3-sign-out")
    click_and_wait(driver.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    # The OP asks to confirm its own logout, then sends the browser back.
    def confirm_logout_at_idp():
        driver.get_log("browser")
        buttons = (driver.find_elements(By.CSS_SELECTOR, "button[name=logout][value=yes]")
                   or driver.find_elements(By.CSS_SELECTOR, "button[type=submit]"))
        if buttons:
            click_and_wait(buttons[0])
        else:
            time.sleep(0.1)
    wait_for_url(BASE + "/_doorward/logged-out", confirm_logout_at_idp)
    expect("Signed out", "You have been signed out of Acme.", "Sign in again")
    no_console_errors("the signed-out page")
    shot("4-signed-out")
    click_and_wait(driver.find_element(By.LINK_TEXT, "Sign in again"))
    expect("Sign in with Test IdP")

    # A user the login policy refuses: their account, a reference, no rule.
    driver.delete_all_cookies()
    driver.get(BASE + "/")
    click_and_wait(driver.find_element(By.LINK_TEXT, "Sign in with Test IdP"))
    sign_in_at_idp("eve")
    expect("Access denied", "Your account eve@elsewhere.test is not allowed to use this app", "Sign in with another account")
    assert "example.com" not in text(), "the rule stays in the log"
    no_console_errors("the access-denied page", 403)
    shot("5-denied")

    # A login that cannot finish: a way to start again.
    driver.get(BASE + "/_doorward/callback?code=x&state=forged")
    expect("Sign-in failed", "Try again")
    no_console_errors("the sign-in-failed page", 401)
    shot("6-login-failed")
    click_and_wait(driver.find_element(By.LINK_TEXT, "Try again"))
    expect("Sign in with Test IdP")

    # An unreachable app: 502 with a reference.
    driver.get(BASE + "/down/")
    expect("The application is unavailable", "Error 502")
    no_console_errors("the 502 page", 502)
    shot("7-bad-gateway")

    # The dark scheme applies too.
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    driver.get(BASE + "/_doorward/logged-out")
    background = driver.execute_script("return getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(13, 17, 23)", background
    shot("8-signed-out-dark")
    print("browser flow: ok")
finally:
    driver.quit()
