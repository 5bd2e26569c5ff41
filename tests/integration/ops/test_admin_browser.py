"""The outbox list in a real headless browser: Debian's chromium driven by selenium.

No browser is downloaded: the test uses /usr/bin/chromium and /usr/bin/chromedriver
(Debian packages `chromium` and `chromium-driver`; CQRS_CHROMIUM and CQRS_CHROMEDRIVER
name others) and fails, never skips, without them, leaving no profile directory or
process behind. `scripts/ensure-services` installs them before the suite when it can.
"""

import os
import pathlib
import struct
import tempfile

import django.contrib.admin
from django.contrib.auth.models import User
from django.test import LiveServerTestCase, override_settings
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from cqrs_outbox.core import contract
from cqrs_outbox.models import OutboxEvent
from tests.testproject.master import models

CHROMIUM = pathlib.Path(os.environ.get("CQRS_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = pathlib.Path(os.environ.get("CQRS_CHROMEDRIVER", "/usr/bin/chromedriver"))
ADMIN_STATIC = pathlib.Path(django.contrib.admin.__file__).parent / "static"
WAIT = 30  # seconds for a page to load
WINDOW = (1400, 900)  # pixels
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def start_chromium(profile_dir):
    """Start Debian's chromium, headless, through Debian's chromedriver."""
    assert CHROMIUM.exists(), "install Debian's chromium: apt-get install chromium"
    assert CHROMEDRIVER.exists(), "install Debian's chromedriver: apt-get install chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile_dir}")
    options.add_argument(f"--window-size={WINDOW[0]},{WINDOW[1]}")
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(WAIT)
    return driver


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


# The test project sets no static files; the live server's own static handler serves the
# admin's CSS and JavaScript straight from Django's package, so the page renders as in
# production. It reads these settings when it starts, hence on the class.
@override_settings(STATIC_URL="/static/", STATIC_ROOT=str(ADMIN_STATIC))
class AdminInBrowserTest(LiveServerTestCase):
    def setUp(self):
        # Each cleanup is registered the moment its resource exists: a browser that
        # fails to start must not leave the profile directory behind.
        self.profile = tempfile.TemporaryDirectory(prefix="cqrs-chromium-")
        self.addCleanup(self.profile.cleanup)
        self.browser = start_chromium(self.profile.name)
        self.addCleanup(self.browser.quit)

    def login(self, next_url):
        User.objects.create_superuser("root", password="secret-pw")
        self.browser.get(f"{self.live_server_url}/admin/login/?next={next_url}")
        self.browser.find_element(By.NAME, "username").send_keys("root")
        self.browser.find_element(By.NAME, "password").send_keys("secret-pw")
        self.browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()

    def test_browser__list_page_shows_the_summary_and_the_replay_action(self):
        for name in ("Ann", "Bob", "Cid"):
            models.Author.objects.create(name=name)
        first = OutboxEvent.objects.order_by("id").first()
        OutboxEvent.objects.filter(pk=first.pk).update(
            status=contract.STATUS_FAILED, last_error="NOT_FOUND - no exchange 'cqrs'"
        )
        self.login("/admin/cqrs_outbox/outboxevent/")
        summary = WebDriverWait(self.browser, WAIT).until(
            expected_conditions.visibility_of_element_located((By.ID, "cqrs-summary"))
        )

        shot = pathlib.Path(self.profile.name) / "outbox-list.png"
        assert self.browser.save_screenshot(str(shot))
        assert _png_size(shot)[0] >= 800

        text = summary.text
        assert "2\npending" in text and "1\nfailed" in text and "oldest pending" in text
        options = self.browser.find_elements(By.CSS_SELECTOR, "select[name=action] option")
        actions = [o.text for o in options]
        assert "Replay selected events (publish again, in order)" in actions
        assert "Retry selected failed events" in actions
        assert len(self.browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")) == 3
        assert "NOT_FOUND - no exchange" in self.browser.find_element(By.ID, "result_list").text
        # The admin's stylesheet applied: the page is laid out, not bare HTML.
        header = self.browser.find_element(By.ID, "header")
        assert header.value_of_css_property("background-color") != "rgba(0, 0, 0, 0)"
