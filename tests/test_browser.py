"""05_attribution.ipynb in a real browser: JupyterLab on loopback, headless Debian Chromium driven by
Playwright (the system executable; no browser download), the notebook run with ``interactive=True``
against a smoke run folder; the dashboard must render and respond to a selection."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from smoke_run import REPO, smoke_run

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"JupyterLab did not answer {url} within {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (`make browser` or `apt-get install chromium`)")
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    import papermill as pm

    run = smoke_run(tmp_path_factory)
    root = tmp_path_factory.mktemp("lab")
    params = yaml.safe_load(run.params_path.read_text())["stages"]["attribution"]
    params.update(run_dir=str(run.path), interactive=True)
    # the committed notebook with the smoke parameters injected (not executed: the browser runs it)
    pm.execute_notebook(str(REPO / "notebooks" / "05_attribution.ipynb"), str(root / "05_attribution.ipynb"),
                        parameters=params, prepare_only=True, kernel_name="python3", progress_bar=False)
    port, token = _free_port(), secrets.token_hex(16)
    state = root / ".jupyter"
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(state / "config"), "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(state / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces"),
           "MPLBACKEND": "Agg"}
    log = root / "jupyterlab.log"
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None", "--LabApp.extension_manager=readonly",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root
        cmd.append("--allow-root")
    with open(log, "w") as logf:
        proc = subprocess.Popen(cmd, env=env, stdout=logf, stderr=subprocess.STDOUT, cwd=root)
    try:
        _wait_http(f"http://127.0.0.1:{port}/api/status?token={token}", proc, log)
        yield {"url": f"http://127.0.0.1:{port}/lab/tree/05_attribution.ipynb?token={token}", "root": root, "log": log,
               "run": run}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_dashboard_renders_and_responds_in_jupyterlab(lab):
    from playwright.sync_api import sync_playwright

    shot = lab["root"] / "failure.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        try:
            page.goto(lab["url"])
            # the notebook is open and its kernel is idle
            page.wait_for_function(
                """() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                           const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
                           return !!(k && k.status === 'idle'); }""", timeout=120_000)
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            dash = page.locator(".omnibench-dashboard")
            dash.wait_for(state="visible", timeout=300_000)
            errors = page.locator('[data-mime-type="application/vnd.jupyter.error"]')
            assert errors.count() == 0, errors.first.inner_text()

            selects = dash.locator(".widget-dropdown select")
            assert selects.count() == 4  # split, class, condition, clip
            clip_select = selects.nth(3)
            options = clip_select.locator("option")
            assert options.count() >= 2
            frames = dash.locator(".widget-image").first
            page.wait_for_function("(img) => img.naturalWidth > 0", arg=frames.element_handle(), timeout=30_000)
            first_src = frames.get_attribute("src")
            first_id = options.nth(0).inner_text().split()[0]  # labels read "<id> [gold → answer ✓]"
            info = dash.locator(".widget-html-content", has_text="split").first
            assert info.inner_text().strip() != ""

            # choose another clip: the info line names it and the frames image is replaced
            second_label = options.nth(1).inner_text()
            clip_select.select_option(index=1)
            new_id = second_label.split()[0]
            assert new_id != first_id
            dash.locator(".widget-html-content b", has_text=new_id).first.wait_for(timeout=60_000)
            page.wait_for_function("([img, old]) => img.src !== old && img.naturalWidth > 0",
                                   arg=[frames.element_handle(), first_src], timeout=60_000)

            # filter by condition: the clip list shrinks to that condition
            cond_select = selects.nth(2)
            cond_select.select_option(label="audio")
            page.wait_for_function(
                "(sel) => Array.from(sel.options).length > 0 && Array.from(sel.options).length < 7",
                arg=clip_select.element_handle(), timeout=60_000)
            dash.screenshot(path=str(lab["root"] / "dashboard.png"))  # for a look after the run
        except Exception:
            page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot: {shot}\nJupyterLab log: {lab['log']}")
            raise
        finally:
            browser.close()
