"""JupyterLab on a copy of the project: its start page, a notebook's cells run in its kernel, a save.

Starts `jupyter lab` headless (as `make lab` does, on a free port with a token) and talks to it as
the browser would: the REST API for sessions and contents, the kernel websocket for execution.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from alignlab.run import notebooks

REPO = Path(__file__).resolve().parent.parent
TOKEN = uuid.uuid4().hex


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    def __init__(self, root: Path, port: int):
        self.root, self.base = root, f"http://127.0.0.1:{port}"
        self.ws_base = f"ws://127.0.0.1:{port}"

    def request(self, method: str, path: str, body=None, follow: bool = True):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Authorization": f"token {TOKEN}",
                                              "Content-Type": "application/json"})
        opener = urllib.request.build_opener() if follow else urllib.request.build_opener(_NoRedirect)
        with opener.open(req, timeout=30) as response:
            text = response.read().decode()
            return response.status, (json.loads(text) if text.strip().startswith(("{", "[")) else text)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.fixture
def lab(tmp_path):
    """A running JupyterLab serving a copy of the project holding notebook 90_ok."""
    root = tmp_path / "project"
    (root / "notebooks").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'lab'\n")
    shutil.copytree(REPO / "profiles", root / "profiles")
    shutil.copy(REPO / "tests" / "notebooks" / "90_ok.ipynb", root / "notebooks")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALIGNLAB_RUN_DIR", "ALIGNLAB_ROOT",
                                                                    "ALIGNLAB_NOTEBOOK", "JUPYTER"))}
    env.update(JUPYTER_CONFIG_DIR=str(tmp_path / "config"), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"))
    port = _free_port()
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
               f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}",
               "--LabApp.default_url=/lab/tree/notebooks"]  # as `make lab`
    if os.geteuid() == 0:
        command.append("--allow-root")
    log = open(tmp_path / "lab.log", "w")
    server = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    client = Lab(root, port)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if client.request("GET", "/api/status")[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail("jupyter lab did not start:\n" + (tmp_path / "lab.log").read_text())
            time.sleep(0.5)
        yield client
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _execute(ws, code: str, session: str, timeout: float = 120) -> list[dict]:
    """Run `code` on the kernel behind websocket `ws`; the iopub messages it caused, in order."""
    msg_id = uuid.uuid4().hex
    ws.send(json.dumps({
        "header": {"msg_id": msg_id, "msg_type": "execute_request", "session": session, "username": "test",
                   "version": "5.3", "date": ""},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True}}))
    messages, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = json.loads(ws.recv())
        if msg.get("parent_header", {}).get("msg_id") != msg_id or msg.get("channel") != "iopub":
            continue
        messages.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return messages
    raise TimeoutError(f"no idle status for {code[:40]!r}")


def _kernel_info(ws, session: str) -> dict:
    msg_id = uuid.uuid4().hex
    ws.send(json.dumps({
        "header": {"msg_id": msg_id, "msg_type": "kernel_info_request", "session": session,
                   "username": "test", "version": "5.3", "date": ""},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [], "content": {}}))
    while True:
        msg = json.loads(ws.recv())
        if msg.get("parent_header", {}).get("msg_id") == msg_id and msg["msg_type"] == "kernel_info_reply":
            return msg["content"]


@pytest.mark.slow
def test_jupyterlab_opens_runs_and_saves_a_notebook(lab):
    import websocket

    with pytest.raises(urllib.error.HTTPError) as redirect:  # urllib raises on a redirect not followed
        lab.request("GET", "/", follow=False)
    assert redirect.value.code in (301, 302)
    assert redirect.value.headers["Location"].rstrip("?").endswith("/lab/tree/notebooks")  # the start page

    path = "notebooks/90_ok.ipynb"
    _, model = lab.request("GET", f"/api/contents/{path}")
    cells = [c for c in model["content"]["cells"] if c["cell_type"] == "code"]

    _, session = lab.request("POST", "/api/sessions", {
        "path": path, "name": "90_ok.ipynb", "type": "notebook", "kernel": {"name": "python3"}})
    kernel = session["kernel"]["id"]
    ws = websocket.create_connection(f"{lab.ws_base}/api/kernels/{kernel}/channels?token={TOKEN}", timeout=120)
    try:
        client_session = uuid.uuid4().hex
        outputs = []
        for cell in cells:  # parameters, check_params, then save_metrics (with a progress bar)
            messages = _execute(ws, cell["source"], client_session)
            outputs.append([m for m in messages if m["msg_type"] in
                            ("stream", "execute_result", "display_data", "error")])
        info = _kernel_info(ws, client_session)
    finally:
        ws.close()
        lab.request("DELETE", f"/api/sessions/{session['id']}")

    assert not [m for cell in outputs for m in cell if m["msg_type"] == "error"], outputs
    # the second cell shows the checked parameters
    [result] = [m for m in outputs[1] if m["msg_type"] == "execute_result"]
    assert "'n_items': 3" in result["content"]["data"]["text/plain"]
    # no stderr boxes (tqdm finds ipywidgets: its bar is a widget), no absolute paths
    assert not [m for cell in outputs for m in cell if m["msg_type"] == "stream"
                and m["content"]["name"] == "stderr"], outputs
    shown = json.dumps(outputs)
    assert "application/vnd.jupyter.widget-view+json" in shown
    assert "metrics -> results/90_ok/interactive/metrics.json" in shown and str(lab.root) not in shown
    assert (lab.root / "results" / "90_ok" / "interactive" / "metrics.json").is_file()

    # the kernel reports the language_info that `make strip` writes
    assert info["language_info"] == notebooks.language_info(info["language_info"]["version"])
    # saving as JupyterLab does (its notebook model, language_info from the kernel) writes the
    # bytes `make strip` writes
    content = model["content"]
    content["metadata"]["language_info"] = info["language_info"]
    lab.request("PUT", f"/api/contents/{path}", {"type": "notebook", "format": "json", "content": content})
    saved = (lab.root / path).read_text(encoding="utf-8")
    committed = (REPO / "tests" / "notebooks" / "90_ok.ipynb").read_text(encoding="utf-8")
    assert saved == notebooks.normalised_text(committed, info["language_info"]["version"])

