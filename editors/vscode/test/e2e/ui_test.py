"""Drives the real VS Code workbench (code-server) with Playwright and Debian's chromium.

Each check is one scenario of issue 7; the run prints `N passed, M failed` and exits 1 on a failure.
"""
import argparse
import json
import os
import re
import sys
import time
import traceback

from playwright.sync_api import sync_playwright, expect

ap = argparse.ArgumentParser()
ap.add_argument("--url", required=True)
ap.add_argument("--ws", required=True)
ap.add_argument("--turns", required=True)
ap.add_argument("--orig", required=True)
ap.add_argument("--images", required=True)
ap.add_argument("--logs", required=True)
ap.add_argument("--user-settings", required=True, help="the user settings file (serverPath, engine, toolPolicy live there)")
ap.add_argument("--marker", required=True, help="a file the workspace's own serverPath would create")
ap.add_argument("--server-log", required=True, help="what the client sent the user's server (its stdin)")
ap.add_argument("--untrusted", action="store_true", help="check Restricted Mode only (workspace trust on, answered No)")
a = ap.parse_args()
CALC = os.path.join(a.ws, "src", "calc.py")
ORIG = open(a.orig).read()
T = 30_000  # ms, per wait

results = []


def check(name):
    def deco(fn):
        t0 = time.time()
        try:
            fn()
            results.append((name, True))
            print(f"PASS {name} ({time.time() - t0:.1f}s)", flush=True)
        except Exception:
            results.append((name, False))
            print(f"FAIL {name} ({time.time() - t0:.1f}s)\n{traceback.format_exc()}", flush=True)
            try:
                page.screenshot(path=os.path.join(a.logs, f"fail-{len(results)}.png"))
            except Exception:
                pass
        return fn
    return deco


def set_settings(**kv):
    """Writes the remote machine's settings (engine has machine scope: workspace values do not
    count); VS Code notices the file and the client sends didChangeConfiguration."""
    p = os.path.join(os.path.dirname(os.path.dirname(a.user_settings)), "Machine", "settings.json")
    os.makedirs(os.path.dirname(p), exist_ok=True)
    s = json.load(open(p)) if os.path.exists(p) else {}
    s.update({f"punie.{k}": v for k, v in kv.items()})
    json.dump(s, open(p, "w"), indent=2)
    time.sleep(2.0)


def engine(name):
    set_settings(engine=f"scripted:{os.path.join(a.turns, name)}")


def editor_text():
    return page.locator(".editor-instance .view-lines").first.inner_text().replace("\u00a0", " ")


def select_all_in_editor():
    page.locator(".editor-instance .view-lines").first.click()
    page.keyboard.press("Control+a")


def open_menu():
    select_all_in_editor()
    page.keyboard.press("Control+.")
    menu = page.locator(".action-widget")
    expect(menu).to_contain_text("Ask Punie: Explain", timeout=T)
    return menu


def choose(title):
    menu = open_menu()
    # The menu sits under a pointer block: walk it with the keyboard, like a user would.
    for _ in range(12):
        focused = menu.locator(".monaco-list-row.focused").inner_text().strip()
        if focused.endswith(title):
            page.keyboard.press("Enter")
            return
        page.keyboard.press("ArrowDown")
    raise AssertionError(f"{title!r} not found in the code action menu")


def wait_for_menu():
    """The code action menu, once the server answers (it may still be starting)."""
    deadline = time.time() + 60
    while True:
        try:
            return open_menu()
        except Exception:
            if time.time() > deadline:
                raise
            page.keyboard.press("Escape")
            time.sleep(1)


def assert_server_got_only_users_settings():
    """The workspace's nested and dotted serverPath, engine and toolPolicy reached nothing: its
    program never ran, and the user's server got the user's engine, never the workspace's
    engine or its `allow` (initializationOptions, workspace/configuration, didChangeConfiguration)."""
    assert not os.path.exists(a.marker), "the workspace's serverPath was started"
    sent = open(a.server_log).read()
    assert '"initializationOptions"' in sent and "explain.json" in sent, "the user's engine never reached the server"
    assert "evil.json" not in sent, "the server received the workspace's engine"
    assert '"run_command":"allow"' not in sent, "the server received the workspace's toolPolicy"
    if not a.untrusted:  # the Restricted Mode run's user allows writes
        assert '"write_file":"allow"' not in sent, "the server received the workspace's toolPolicy"


def finish():
    passed = sum(1 for _, ok in results if ok)
    failed = len(results) - passed
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


def status_item(pattern):
    return page.locator(".statusbar-item", has_text=re.compile(pattern))


def answers():
    return page.frame_locator("iframe.webview").frame_locator("#active-frame").locator("#runs")


with sync_playwright() as pw:
    browser = pw.chromium.launch(executable_path="/usr/lib/chromium/chromium", args=["--no-sandbox"], headless=True)
    page = browser.new_page(viewport={"width": 1400, "height": 860})
    page.on("console", lambda m: m.type == "error" and os.environ.get("PUNIE_E2E_VERBOSE") and print("console:", m.text))
    page.goto(a.url)
    page.wait_for_selector(".monaco-workbench", timeout=60_000)
    if a.untrusted:
        # VS Code asks whether to trust the folder's authors: a user who cloned it says no.
        no = page.get_by_role("button", name=re.compile("No, I don.t trust"))
        expect(no).to_be_visible(timeout=60_000)
        no.click()
    # Open src/calc.py through Quick Open.
    page.wait_for_selector(".statusbar", timeout=60_000)
    time.sleep(1.0)
    page.keyboard.press("Control+p")
    page.keyboard.type("calc.py")
    page.wait_for_selector(".quick-input-list .monaco-list-row", timeout=T)
    page.keyboard.press("Enter")
    expect(page.locator(".editor-instance .view-lines").first).to_contain_text("def add", timeout=T)

    if a.untrusted:
        @check("restricted mode: a write asks although the user's settings allow writes")
        def _():
            wait_for_menu()
            page.keyboard.press("Escape")
            engine("write.json")
            choose("Ask Punie: Explain")
            dialog = page.locator(".monaco-dialog-box")
            expect(dialog).to_contain_text("Punie wants to write src/calc.py", timeout=T)
            page.screenshot(path=os.path.join(a.images, "untrusted-workspace.png"))
            dialog.get_by_role("button", name="Deny").click()
            expect(status_item(r"Punie: done")).to_be_visible(timeout=T)
            assert open(CALC).read() == ORIG, "src/calc.py changed on disk"
            assert_server_got_only_users_settings()

        browser.close()
        finish()

    @check("settings: a warning says the workspace's serverPath, engine and toolPolicy are ignored")
    def _():
        toasts = page.locator(".notifications-toasts")
        expect(toasts).to_contain_text("ignored this workspace's punie.serverPath, punie.engine", timeout=60_000)
        expect(toasts).to_contain_text("punie.toolPolicy.run_command")
        page.keyboard.press("F1")
        page.keyboard.type("Notifications: Clear All Notifications")
        page.wait_for_selector(".quick-input-list .monaco-list-row", timeout=T)
        page.keyboard.press("Enter")
        expect(toasts).not_to_contain_text("ignored this workspace's", timeout=T)

    @check("code actions: the Ask Punie actions appear in the Ctrl+. menu on a selection")
    def _():
        menu = wait_for_menu()
        for t in ["Ask Punie: Explain", "Ask Punie: Fix", "Ask Punie: Write tests", "Ask Punie: Refactor", "Ask Punie…"]:
            expect(menu).to_contain_text(t)
        page.screenshot(path=os.path.join(a.images, "code-actions.png"))
        page.keyboard.press("Escape")

    @check("progress: a run shows progress in the status bar and ends")
    def _():
        choose("Ask Punie: Explain")
        seen_running = False
        deadline = time.time() + T / 1000
        while time.time() < deadline:
            texts = page.locator(".statusbar-item").all_inner_texts()
            if any(re.search(r"Punie: (?!done|cancelled|failed)", t) for t in texts):
                seen_running = True
            if any("Punie: done" in t for t in texts):
                break
            time.sleep(0.05)
        expect(status_item(r"Punie: done")).to_be_visible(timeout=1000)
        assert seen_running, "never saw the run's progress in the status bar"

    @check("answer panel: shows the answer as markdown, with the tool calls and the buttons")
    def _():
        runs = answers()
        expect(runs).to_contain_text("returns the difference of its arguments", timeout=T)
        expect(runs.locator("strong", has_text="difference")).to_be_visible()
        expect(runs.locator(".tools")).to_contain_text("read_file")
        frame = page.frame_locator("iframe.webview").frame_locator("#active-frame")
        expect(frame.locator("#followup")).to_be_visible()
        expect(frame.locator("#copy-last")).to_be_visible()
        page.screenshot(path=os.path.join(a.images, "answer-panel.png"))

    @check("settings: a workspace's settings, dotted or nested, choose neither the server, the engine nor the policy")
    def _():
        assert "EVIL ENGINE" not in answers().inner_text(timeout=T), "the workspace's engine answered"
        assert_server_got_only_users_settings()

    @check("Ask Punie…: asks for the question with an input box")
    def _():
        engine("ask.json")
        choose("Ask Punie…")
        box = page.locator(".quick-input-widget input")
        expect(box).to_be_visible(timeout=T)
        box.fill("What does add return?")
        page.keyboard.press("Enter")
        expect(answers().locator("blockquote.question", has_text="What does add return?")).to_be_visible(timeout=T)
        expect(answers()).to_contain_text("here is the answer: 42", timeout=T)

    @check("answer panel: raw HTML in an answer shows as text and makes no element")
    def _():
        engine("html.json")
        choose("Ask Punie: Explain")
        runs = answers()
        expect(runs).to_contain_text("If you print the key, wrap it in", timeout=T)
        assert runs.locator("img").count() == 0, runs.inner_html()
        expect(runs).to_contain_text("wrap it in <code> tags: <img src=https://attacker.example")

    @check("cancel: clicking the status bar progress cancels the run")
    def _():
        engine("slow.json")
        choose("Ask Punie: Explain")
        item = status_item(r"Punie: (?!done|cancelled|failed)")
        expect(item).to_be_visible(timeout=T)
        time.sleep(0.5)
        item.first.click()
        expect(status_item(r"Punie: cancelled")).to_be_visible(timeout=T)
        expect(answers().locator(".run-cancelled").last).to_be_visible(timeout=T)

    @check("permissions: a write_file dialog answered Deny leaves the file untouched")
    def _():
        engine("write.json")
        choose("Ask Punie: Explain")
        dialog = page.locator(".monaco-dialog-box")
        # The workspace's `toolPolicy.write_file: allow` does not count: the dialog appears.
        expect(dialog.get_by_role("button", name="Allow for this session")).to_be_visible(timeout=T)
        expect(dialog.get_by_role("button", name="Show diff")).to_be_visible()
        expect(dialog.get_by_role("button", name="Deny")).to_be_visible()
        expect(dialog).to_contain_text("Punie wants to write src/calc.py")
        expect(dialog).to_contain_text("write_file on src/calc.py")
        page.screenshot(path=os.path.join(a.images, "permission-dialog.png"))
        dialog.get_by_role("button", name="Deny").click()
        expect(status_item(r"Punie: done")).to_be_visible(timeout=T)
        assert open(CALC).read() == ORIG, "src/calc.py changed on disk"
        assert "a - b" in editor_text(), editor_text()
        expect(answers()).to_contain_text("not allowed to write", timeout=T)

    @check("fix: a Fix is applied as one undoable edit")
    def _():
        engine("fix.json")
        choose("Ask Punie: Fix")
        expect(page.locator(".editor-instance .view-lines").first).to_contain_text("a + b", timeout=T)
        page.locator(".editor-instance .view-lines").first.click()
        page.keyboard.press("Control+z")
        expect(page.locator(".editor-instance .view-lines").first).to_contain_text("a - b", timeout=5000)
        assert "a + b" not in editor_text(), editor_text()

    @check("permissions: Show diff opens the diff editor on the current and proposed text before Allow")
    def _():
        engine("write_fix.json")
        choose("Ask Punie: Explain")
        dialog = page.locator(".monaco-dialog-box")
        expect(dialog).to_contain_text("Change: 1 line added, 1 removed", timeout=T)
        dialog.get_by_role("button", name="Show diff").click()
        diff = page.locator(".monaco-diff-editor").first
        expect(diff).to_be_visible(timeout=T)
        # Side by side or inline (a narrow editor), the diff shows both texts.
        expect(diff).to_contain_text("a - b", timeout=T)
        expect(diff).to_contain_text("a + b", timeout=T)
        toast = page.locator(".notifications-toasts")
        expect(toast).to_contain_text("Punie wants to write src/calc.py: allow it?", timeout=T)
        allow = toast.get_by_role("button", name="Allow", exact=True)
        expect(allow).to_be_visible(timeout=T)
        time.sleep(0.5)  # the toast slides in; the screenshot should show it whole
        assert open(CALC).read() == ORIG, "nothing is written before Allow"
        page.screenshot(path=os.path.join(a.images, "permission-diff.png"))
        allow.click()
        expect(status_item(r"Punie: done")).to_be_visible(timeout=T)
        # The edit went to the real file's buffer: saving it puts the proposed text on disk.
        page.keyboard.press("F1")
        page.keyboard.type("File: Save All")
        page.wait_for_selector(".quick-input-list .monaco-list-row", timeout=T)
        page.keyboard.press("Enter")
        deadline = time.time() + T / 1000
        while "a + b" not in open(CALC).read() and time.time() < deadline:
            time.sleep(0.1)
        assert open(CALC).read() == "def add(a, b):\n    return a + b\n", open(CALC).read()

    browser.close()

finish()
