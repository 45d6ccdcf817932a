"""Drives the demo page of `recflow serve` in headless Chromium and saves screenshots
(`make demo-check`).

usage: demo_check.py RECFLOW_BINARY MODEL_DIR OUT_DIR

Starts `recflow serve` on a free loopback port with the model, then through chromedriver
(WebDriver, by Selenium): the start page; user-id suggestions while typing; a user's page by the
keyboard alone (skip link, search box, Enter); ranked items with titles and "Because you rated";
similar items opened in place with Enter; a random user; the cold-start view; an item page; and
the user's page with JavaScript switched off (everything but the in-place extras still there).
Each check names what it expected when it fails; each view gets a PNG in OUT_DIR. Stops the
server's whole process group.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check(cond, what):
    if not cond:
        sys.exit(f"demo_check: FAILED: {what}")
    print(f"  ok  {what}")


def driver(javascript=True):
    opts = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1200",
              "--hide-scrollbars"):
        opts.add_argument(a)
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            opts.binary_location = shutil.which(name)
            break
    if not javascript:
        opts.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2})
    # A local chromedriver: Selenium Manager would try to download one.
    path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    return webdriver.Chrome(service=Service(executable_path=path), options=opts)


def main():
    binary, model, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [binary, "-q", "serve", "--model", model, "--port", str(port)],
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base}/ready", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        else:
            sys.exit("demo_check: the server never became ready")
        run_checks(base, out)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)


def run_checks(base, out):
    d = driver()
    wait = WebDriverWait(d, 10)
    try:
        d.get(base + "/")
        check(d.find_element(By.TAG_NAME, "h1").text == "Recommendations", "start page heading")
        check(d.find_element(By.CSS_SELECTOR, "label[for=user]").text == "User id",
              "the search box has a label")
        d.save_screenshot(str(out / "start.png"))

        # A random user's id, to type a prefix of it.
        d.find_element(By.XPATH, "//button[text()='Random user']").click()
        wait.until(EC.url_contains("user="))
        user = d.find_element(By.CSS_SELECTOR, "h1 .id").text
        check(len(user) > 3, f"random user page for `{user}`")

        d.get(base + "/")
        box = d.find_element(By.ID, "user")
        box.send_keys(user[:3])
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#user-ids option")) > 0)
        options = [o.get_attribute("value") for o in d.find_elements(By.CSS_SELECTOR, "#user-ids option")]
        check(all(o.startswith(user[:3]) for o in options), f"{len(options)} suggestions for `{user[:3]}`")

        # Keyboard only: the first Tab reaches the skip link, then the search box; Enter submits.
        d.get(base + "/")
        body = d.find_element(By.TAG_NAME, "body")
        body.send_keys(Keys.TAB)
        check(d.switch_to.active_element.get_attribute("class") == "skip", "Tab reaches the skip link first")
        d.switch_to.active_element.send_keys(Keys.TAB, Keys.TAB)
        active = d.switch_to.active_element
        check(active.get_attribute("id") == "user", "then the search box")
        active.send_keys(user, Keys.ENTER)
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "ol.items")))
        items = d.find_elements(By.CSS_SELECTOR, "ol.items > li")
        check(len(items) == 10, "ten recommendations")
        check(d.find_element(By.CSS_SELECTOR, "h1 .id").text == user, "the typed user's page")
        check("Strategy:" in d.find_element(By.CSS_SELECTOR, ".strategy").text, "the strategy is shown")
        check(len(d.find_elements(By.CSS_SELECTOR, "p.because")) > 0, "explanations shown")
        check(len(d.find_elements(By.CSS_SELECTOR, "table.history tbody tr")) > 0, "training history shown")
        titles = [e.text for e in d.find_elements(By.CSS_SELECTOR, "ol.items .title")]
        check(all(t for t in titles), "every item has a title")
        d.save_screenshot(str(out / "user.png"))

        # Similar items in place, by the keyboard.
        button = d.find_element(By.CSS_SELECTOR, "button.similar")
        button.send_keys(Keys.ENTER)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".similar-list li")) > 0)
        check(button.get_attribute("aria-expanded") == "true", "similar items open in place (aria-expanded)")
        d.save_screenshot(str(out / "user-similar.png"))

        d.find_element(By.LINK_TEXT, "Cold start").click()
        wait.until(EC.text_to_be_present_in_element((By.TAG_NAME, "h1"), "Cold start"))
        check(len(d.find_elements(By.CSS_SELECTOR, "ol.items > li")) == 10, "cold-start view lists ten items")
        d.save_screenshot(str(out / "cold-start.png"))

        d.find_element(By.CSS_SELECTOR, "ol.items > li a").click()
        wait.until(EC.url_contains("/items/"))
        check(d.find_element(By.TAG_NAME, "h2").text == "Similar items", "item page lists similar items")
        d.save_screenshot(str(out / "item.png"))
        logs = [e for e in d.get_log("browser") if e["level"] == "SEVERE"]
        check(not logs, f"no browser errors ({logs[:2]})")
    finally:
        d.quit()

    d = driver(javascript=False)
    try:
        d.get(f"{base}/?user={urllib.parse.quote(user)}")
        check(len(d.find_elements(By.CSS_SELECTOR, "ol.items > li")) == 10, "without JavaScript: ten recommendations")
        check(not d.find_element(By.CSS_SELECTOR, "button.similar").is_displayed(),
              "without JavaScript: the in-place button is hidden, the item link remains")
        d.save_screenshot(str(out / "user-no-js.png"))
    finally:
        d.quit()
    print(f"demo_check: every check passed; screenshots in {out}")


if __name__ == "__main__":
    main()
