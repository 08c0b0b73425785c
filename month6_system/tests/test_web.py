"""The web chat page in a real headless Chromium (Debian's package, driven by Playwright), on the real
assistant: log in with an API key, see an answer stream, upload a document and ask about it, open the
citation's evidence, check that document text is never run as HTML, and forget the memory. Saves a
screenshot to runs/month6/web_chat.png."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import pytest

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [pytest.mark.model,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium (.ci/run installs it)")]
SCREENSHOT = Path(__file__).resolve().parents[2] / "runs" / "month6" / "web_chat.png"
DATA = Path(tempfile.mkdtemp(prefix="month6-web-"))
DOCUMENT = ("The cafeteria opens at 8 am on weekdays and serves soup until 3 pm. "
            '<img src="x" onerror="window.__pwned = 1"><script>window.__pwned = 2</script>\n')


def server_assistant():
    from month6_system.agent import build_assistant
    from month6_system.keys import KeyStore
    from month6_system.settings import Settings

    server_assistant.key = KeyStore(DATA).create("web-team")  # from now on /v1 needs it
    return build_assistant(Settings(data_dir=DATA))


server_settings = {"data_dir": DATA}


@pytest.fixture(scope="module")
def page(live_server):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(live_server.url + "/")
        yield page
        browser.close()


def ask(page, text: str):
    before = page.locator("#messages li.assistant").count()
    page.fill("#prompt", text)
    page.press("#prompt", "Enter")
    answer = page.locator("#messages li").nth(2 * before + 1)
    answer.wait_for()
    return answer


def test_login_stream_upload_cite_and_forget(page, tmp_path):
    expect = sync_api.expect
    page.fill("#api-key", "sk-hyb-wrong")
    page.click("#login button")
    expect(page.locator("#login-status")).to_contain_text("Incorrect or revoked API key")
    page.fill("#api-key", server_assistant.key)
    page.click("#login button")
    expect(page.locator("#login-status")).to_have_text("key accepted")

    # an answer streams: its text is seen growing before it is done
    answer = ask(page, "Write a haiku about the sea.")
    lengths, deadline = [], time.monotonic() + 120
    while "done" not in (answer.get_attribute("class") or "") and time.monotonic() < deadline:
        lengths.append(len(answer.locator(".text").text_content() or ""))
        time.sleep(0.05)
    assert "done" in answer.get_attribute("class")
    partial = sorted({n for n in lengths if n > 0})
    assert len(partial) >= 3, f"the answer did not stream: lengths seen {partial}"
    expect(answer.locator(".meta .expert")).to_contain_text("expert")

    # upload a document and see its per-file status, then ask about it and open the citation
    document = tmp_path / "cafeteria.txt"
    document.write_text(DOCUMENT)
    page.set_input_files("#files", str(document))
    page.click("#upload button")
    expect(page.locator("#upload-report li")).to_have_text("cafeteria.txt: ingested, 1 chunks")
    expect(page.locator("#document-list li")).to_contain_text("cafeteria.txt (done, 1 chunks)")
    answer = ask(page, "When does the cafeteria open?")
    expect(answer).to_have_class("assistant done", timeout=60_000)
    assert "8 am" in answer.locator(".text").text_content()
    citation = answer.locator("button.citation").first
    expect(citation).to_contain_text("cafeteria.txt")
    citation.click()
    expect(page.locator("#evidence")).to_be_visible()
    expect(page.locator("#evidence-list")).to_contain_text("opens at 8 am")

    # document text is text: the planted markup ran nowhere
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#messages img, #evidence img, #messages script").count() == 0

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    expect(page.locator("#memory-list li")).to_have_count(4)  # two questions, two answers
    page.click("#forget")
    expect(page.locator("#memory-list li")).to_have_count(0)
