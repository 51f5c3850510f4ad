"""The sandbox against hostile programs: none may pass without passing the tests, reach the host
(files, network, environment, processes) or leave a process behind."""

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import uuid

import pytest

from alignlab.sandbox import STATUSES, isolation, run_program
from alignlab.sandbox.cli import main as sandbox_main

ISOLATED = isolation() != "none"
needs_namespaces = pytest.mark.skipif(not ISOLATED, reason="unshare is not available: no namespaces to test")

TESTS = ["assert add(1, 2) == 3", "assert add(2, 0) == 2"]
CORRECT = "def add(a, b):\n    return a + b\n"


def run(program, tests=TESTS, **kwargs):
    kwargs.setdefault("timeout", 1.5)
    return run_program(textwrap.dedent(program), tests, **kwargs)


def host_processes_with(marker: str) -> list[str]:
    """Command lines of host processes containing `marker`, or owned by a sandbox uid (>= 10**6)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
            uid = os.stat(f"/proc/{entry}").st_uid
        except OSError:
            continue
        if marker in cmdline or uid >= 10**6:
            found.append(f"{entry} uid={uid} {cmdline[:80]}")
    return found


# --------------------------------------------------------------------------------------------
# Honest programs


def test_a_correct_program_passes_and_a_wrong_one_fails():
    good = run(CORRECT + "print('hi')\n")
    assert good.status == "passed" and good.cases == [True, True] and good.stdout == "hi\n"
    bad = run("def add(a, b):\n    return a - b\n")
    assert bad.status == "failed" and bad.cases == [False, True] and bad.pass_fraction == 0.5


def test_an_exception_is_an_error_and_a_missing_function_fails_every_case():
    assert run("def add(a, b):\n    raise ValueError('no')\n").status == "error"
    at_load = run(CORRECT + "x = [][1]\n")
    assert at_load.status == "error" and at_load.cases == [False, False]
    assert "did not load: IndexError" in at_load.detail
    result = run("def sub(a, b):\n    return a - b\n")
    assert result.status == "error" and result.cases == [False, False]


def test_setup_and_expose_keep_trusted_helpers_out_of_the_programs_reach():
    # the program redefines the helper the tests rely on; with expose, the tests keep the trusted one
    setup = "def square(x):\n    return x * x\n\ndef f(x):\n    pass\n"
    program = "def square(x):\n    return 0\n\ndef f(x):\n    return 0\n"
    result = run(program, ["assert f(3) == square(3) - 9", "assert square(2) == 4"], setup=setup, expose=["f"])
    assert result.status == "passed"
    result = run(program, ["assert f(3) == square(3)"], setup=setup, expose=["f"])
    assert result.status == "failed"


def test_without_tests_a_program_that_runs_to_its_end_passes():
    assert run("x = 1\n", None).status == "passed"
    assert run("raise SystemExit(0)\n", None).status == "error"


# --------------------------------------------------------------------------------------------
# Forged passes


@pytest.mark.parametrize("program", [
    "import os\nos._exit(0)\n",
    "import sys\nsys.exit(0)\n",
    CORRECT + "import os\nos._exit(0)\n",
    "raise SystemExit\n",
    "print('passed')\nprint(json.dumps({'status': 'passed'}))\n",
])
def test_exiting_or_printing_before_the_tests_is_no_pass(program):
    result = run(program)
    assert result.status != "passed" and result.status in STATUSES


def test_objects_that_claim_equality_are_not_plain_data():
    program = """
    class Anything:
        def __eq__(self, other):
            return True
    def add(a, b):
        return Anything()
    """
    result = run(program)
    assert result.status == "error" and result.cases == [False, False]
    assert "not plain data" in result.detail


def test_patching_assert_and_builtins_does_not_reach_the_tests():
    program = """
    import builtins, sys, gc
    builtins.AssertionError = type('Never', (Exception,), {})
    builtins.isinstance = lambda *a: True
    sys.modules['builtins'].__dict__['print'] = lambda *a, **k: None
    for obj in gc.get_objects():
        if getattr(obj, '__name__', '') in ('run_tests', 'serve_program', 'supervise'):
            obj.__code__ = (lambda *a, **k: None).__code__
    def add(a, b):
        return 0
    """
    result = run(program)
    # the program can garble how its own failure is described (here: as "memory"), never pass
    assert result.status != "passed" and result.cases == [False, False]


def test_writing_a_fake_verdict_to_every_descriptor_and_proc_fd_is_no_pass():
    program = """
    import os
    fake = b'cases 11\\npass ' + b'0' * 64 + b'\\nnames [\\'add\\']\\n'
    for fd in range(0, 1024):
        try:
            os.write(fd, fake)
        except OSError:
            pass
    for pid in os.listdir('/proc'):
        if pid.isdigit():
            for fd in range(0, 16):
                try:
                    with open(f'/proc/{pid}/fd/{fd}', 'wb') as f:
                        f.write(fake)
                except OSError:
                    pass
    def add(a, b):
        return 0
    """
    result = run(program)
    assert result.status != "passed"


def test_the_program_cannot_read_the_tests_or_the_supervisor():
    secret = "expected-" + uuid.uuid4().hex
    program = """
    import os
    seen = []
    for pid in os.listdir('/proc'):
        if pid.isdigit() and int(pid) != os.getpid():
            for part in ('cmdline', 'environ', 'mem', 'fd/0'):
                try:
                    with open(f'/proc/{pid}/{part}', 'rb') as f:
                        seen.append(f.read(1 << 20))
                except OSError:
                    pass
    print(b''.join(seen).decode('utf-8', 'replace'))
    def add(a, b):
        return 0
    """
    result = run(program, [f"assert add(1, 2) == 3 or {secret!r} == 1"])
    assert result.status == "failed"
    assert secret not in result.stdout + result.stderr


# --------------------------------------------------------------------------------------------
# Resource exhaustion


def test_fork_bomb_is_contained_and_leaves_no_process():
    program = """
    import os
    while True:
        try:
            os.fork()
        except OSError:
            pass
    """
    result = run(program, timeout=1.0)
    assert result.status in ("timeout", "error", "killed", "memory")
    assert host_processes_with("alignlab-fork-bomb") == []


def test_thread_bomb_is_contained():
    program = """
    import threading, time
    while True:
        threading.Thread(target=time.sleep, args=(100,)).start()
    """
    assert run(program, timeout=1.0).status in ("error", "memory", "timeout")


@pytest.mark.parametrize("program", [
    "x = bytearray(1 << 36)\n",
    "x = []\nwhile True:\n    x.append(' ' * 10**6)\n",
])
def test_memory_bombs_hit_the_memory_limit(program):
    assert run(program, memory_mb=128).status == "memory"


@pytest.mark.parametrize("program", [
    "while True:\n    pass\n",
    "import time\ntime.sleep(100)\n",
    "import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True:\n    pass\n",
    "import os, signal\nos.kill(os.getpid(), signal.SIGSTOP)\n",
])
def test_programs_that_never_finish_time_out(program):
    result = run(program, timeout=1.0)
    assert result.status == "timeout" and result.seconds < 6


def test_a_function_that_never_returns_fails_its_case_by_timeout():
    result = run("def add(a, b):\n    while True:\n        pass\n", timeout=1.0, case_timeout=0.3)
    assert result.status == "timeout" and result.cases == [False, False]


def test_huge_output_is_capped():
    result = run(CORRECT + "import sys\nfor _ in range(2000):\n    sys.stdout.write('x' * 10000)\n",
                 output_bytes=1000, timeout=3)
    assert result.status == "passed"
    assert result.stdout.startswith("x" * 1000) and len(result.stdout) < 1100 and "more bytes dropped" in result.stdout


def test_big_files_and_many_open_files_hit_their_limits():
    big = run("with open('big', 'wb') as f:\n    f.write(b'0' * (64 << 20))\n", None, file_mb=1)
    assert big.status in ("killed", "error", "memory")
    files = run("fs = [open(f'f{i}', 'w') for i in range(1000)]\n", None)
    assert files.status == "error" and "Too many open files" in files.stderr


def test_a_segfault_is_killed():
    result = run("import ctypes\nctypes.string_at(0)\n")
    assert result.status == "killed"


# --------------------------------------------------------------------------------------------
# The host: files, environment, network, processes


@needs_namespaces
def test_writing_outside_its_folder_leaves_the_host_unchanged(tmp_path):
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    os.chmod(open_dir, 0o777)
    os.chmod(tmp_path, 0o777)
    marker = "alignlab-escape-" + uuid.uuid4().hex
    targets = [f"/tmp/{marker}", f"/var/tmp/{marker}", f"/dev/shm/{marker}", str(open_dir / marker),
               os.path.join(os.path.expanduser("~"), marker), os.path.join(os.getcwd(), marker)]
    program = f"""
    import os
    for path in {targets!r}:
        try:
            with open(path, 'w') as f:
                f.write('escaped')
        except OSError as e:
            print('blocked', path, e)
    with open('mine.txt', 'w') as f:
        f.write('inside is fine')
    """
    result = run(program, None)
    assert result.status == "passed", result
    assert [p for p in targets if os.path.exists(p)] == []


@needs_namespaces
def test_the_users_files_and_environment_are_out_of_reach(tmp_path, monkeypatch):
    secret = "secret-" + uuid.uuid4().hex
    monkeypatch.setenv("ALIGNLAB_TEST_SECRET", secret)
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(secret)
    os.chmod(secret_file, 0o600)
    os.chmod(tmp_path, 0o755)
    home_file = os.path.join(os.path.expanduser("~"), f".alignlab-secret-{uuid.uuid4().hex}")
    with open(home_file, "w") as f:
        f.write(secret)
    try:
        program = f"""
        import os
        print(dict(os.environ))
        for path in ({str(secret_file)!r}, {home_file!r}, '/proc/1/environ', '/etc/shadow'):
            try:
                print(open(path).read())
            except OSError as e:
                print('blocked', e)
        """
        result = run(program, None)
    finally:
        os.remove(home_file)
    assert secret not in result.stdout + result.stderr
    assert set(eval(result.stdout.splitlines()[0])) <= {"PATH", "HOME", "LANG", "TMPDIR"}


@needs_namespaces
def test_no_network_not_even_the_hosts_loopback():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(3)
    port = server.getsockname()[1]
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(_accept(server)))
    thread.start()
    program = f"""
    import socket
    for address in (('127.0.0.1', {port}), ('1.1.1.1', 80), ('example.com', 80)):
        try:
            socket.create_connection(address, timeout=0.5)
            print('connected', address)
        except OSError as e:
            print('blocked', address, e)
    """
    result = run(program, None, timeout=3)
    thread.join()
    server.close()
    assert "connected" not in result.stdout and accepted == [None]


def _accept(server):
    try:
        return server.accept()
    except OSError:
        return None


def test_killing_its_parent_or_everything_it_can_does_not_touch_the_supervisor():
    program = """
    import os, signal
    for target in (os.getppid(), 1, -1):
        try:
            os.kill(target, signal.SIGKILL)
        except OSError as e:
            print('blocked', e)
    def add(a, b):
        return a + b
    """
    result = run(program)
    assert "verdict" not in result.detail  # the supervisor survived to give one
    if isolation() == "root":  # the tests run under another uid, out of the program's reach
        assert result.status == "passed"


def test_children_that_outlive_the_program_are_killed():
    marker = f"{uuid.uuid4().int % 900 + 100}.{uuid.uuid4().int % 900 + 100}"
    program = f"""
    import os, subprocess
    subprocess.Popen(['sleep', '{marker}'], start_new_session=True)
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execvp('sleep', ['sleep', '{marker}'])
        os._exit(0)
    def add(a, b):
        return a + b
    """
    result = run(program)
    assert result.status == "passed"
    assert host_processes_with(f"sleep {marker}") == []


def test_privilege_changes_fail():
    program = """
    import os
    calls = (lambda: os.setuid(0), lambda: os.chroot('/'), lambda: os.mknod('dev', 0o020600, os.makedev(1, 3)))
    for call in calls:
        try:
            call()
            print('allowed')
        except OSError as e:
            print('blocked', e)
    """
    result = run(program, None)
    assert "allowed" not in result.stdout


# --------------------------------------------------------------------------------------------
# Command line


def test_command_line_prints_json_and_exits_zero_only_on_a_pass(tmp_path, capsys):
    program, tests = tmp_path / "p.py", tmp_path / "t.py"
    program.write_text(CORRECT)
    tests.write_text("assert add(2, 2) == 4\n")
    assert sandbox_main([str(program), "--tests", str(tests), "--timeout", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "passed"
    tests.write_text("assert add(2, 2) == 5\n")
    assert sandbox_main([str(program), "--tests", str(tests), "--memory-mb", "256"]) == 1
    assert json.loads(capsys.readouterr().out)["status"] == "failed"
    assert sandbox_main([str(tmp_path / "missing.py")]) == 2


def test_python_dash_m_entry_point(tmp_path):
    program = tmp_path / "p.py"
    program.write_text("import os\nos._exit(0)\n")
    done = subprocess.run([sys.executable, "-m", "alignlab.sandbox", str(program), "--timeout", "2"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 1 and json.loads(done.stdout)["status"] == "error"


def test_the_sandbox_is_a_low_layer_with_no_heavy_imports():
    code = ("import sys, alignlab.sandbox, alignlab.sandbox.cli; "
            "heavy = [m for m in ('torch', 'numpy', 'pandas', 'transformers') if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
