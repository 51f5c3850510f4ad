"""The code that runs inside the sandbox, as the first process of its namespaces (standard library only).

The host (`alignlab.sandbox.execute`) starts this file's source with `python -I -S -B -c`, behind
`unshare` when the kernel allows, and writes one JSON job to its stdin. This process stays trusted:
it never runs the untrusted code itself. It

1. hides the host: makes every mount private and read-only, mounts a fresh /proc (only the sandbox's
   processes are visible) and small tmpfs over /tmp, /var/tmp, /dev/shm and the home folders, and
   bind-mounts the standard library read-only where other users can read it;
2. forks two children, each with its own uid (when it runs as real root) or with every capability
   dropped (in a user namespace), both non-dumpable, with rlimits, a scrubbed environment, and no
   file descriptors but their own pipes:
   - the PROGRAM process executes the program and then answers calls to its functions: each
     request and reply is a Python literal on one line (`repr` out, `ast.literal_eval` in);
   - the TESTS process executes the trusted setup and the tests, with each exposed name of the
     program bound to a proxy that calls into the program process. A returned value is parsed with
     `ast.literal_eval`, so it is plain data: no object with a forged `__eq__`, no patched `assert`
     or harness can reach the process where the assertions run;
3. gives the tests process, before any test code runs, a nonce that exists nowhere else; the
   tests process writes it back on a private pipe only after every test case passed. The
   verdict is `passed` only when that nonce comes back: an exit code, printed text, or an
   early `os._exit(0)` / `sys.exit(0)` of the program can at most make the tests fail.

The program's own output is captured up to a cap (the rest is read and dropped). At the end the
worker kills every process of the sandbox (in a pid namespace the kernel also kills them all when
this process exits) and prints one JSON object.
"""

import ast
import ctypes
import fcntl
import json
import os
import resource
import select
import signal
import sys
import time

# Modules a program or a test may import, loaded here before the fork so that a program needs no
# file access to import them (the interpreter may live in a folder the sandbox users cannot read).
PRELOAD = ("abc", "array", "bisect", "calendar", "cmath", "collections", "collections.abc", "copy", "dataclasses",
           "datetime", "decimal", "enum", "fractions", "functools", "hashlib", "heapq", "itertools", "json",
           "math", "numbers", "operator", "random", "re", "statistics", "string", "struct", "sys", "textwrap",
           "time", "typing", "unicodedata", "traceback", "io", "contextlib", "types", "inspect")

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 4, 24, 36, 38
LINE_LIMIT = 1 << 20  # longest request or reply line (bytes)

libc = ctypes.CDLL(None, use_errno=True)


def prctl(option, arg=0):
    libc.prctl(option, ctypes.c_ulong(arg), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))


def mount(source, target, fstype, flags, data=None):
    enc = (lambda s: s.encode() if isinstance(s, str) else s)
    if libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)) != 0:
        raise OSError(ctypes.get_errno(), f"mount {target}: {os.strerror(ctypes.get_errno())}")


def mount_points():
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4]
            out.append(point.encode().decode("unicode_escape"))
    return out


def hide_host(job):
    """Private, read-only mounts; fresh /proc and tmpfs scratch space; the stdlib bind-mounted."""
    notes = []
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    if job["pid_namespace"]:
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV)
    for point in sorted(set(mount_points()), key=len, reverse=True):
        if point.startswith("/proc"):
            continue
        try:
            mount(None, point, None, MS_REMOUNT | MS_BIND | MS_RDONLY)
        except OSError:
            notes.append(f"could not make {point} read-only")
    size = f"size={int(job['scratch_mb'])}m"
    for point in ("/tmp", "/var/tmp", "/dev/shm"):
        if os.path.isdir(point):
            mount("tmpfs", point, "tmpfs", MS_NOSUID | MS_NODEV, size + ",mode=1777")
    os.mkdir("/tmp/.stdlib", 0o755)
    os.mkdir("/tmp/.stdlib/lib", 0o755)
    stdlib = os.path.dirname(os.__file__)
    mount(stdlib, "/tmp/.stdlib/lib", None, MS_BIND | MS_REC)
    mount(None, "/tmp/.stdlib/lib", None, MS_REMOUNT | MS_BIND | MS_RDONLY)
    sys.path[:] = [p.replace(stdlib, "/tmp/.stdlib/lib", 1) if p.startswith(stdlib) else p for p in sys.path]
    for module in list(sys.modules.values()):  # packages already imported look for submodules here
        path = getattr(module, "__path__", None)
        if isinstance(path, list):
            path[:] = [p.replace(stdlib, "/tmp/.stdlib/lib", 1) if p.startswith(stdlib) else p for p in path]
    for point in ("/root", "/home", os.environ.get("HOME", "/")):
        if point != "/" and os.path.isdir(point):
            mount("tmpfs", point, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
    return notes


def drop_capabilities():
    """Clear every capability (user-namespace mode, where the sandbox keeps the host user's uid)."""
    for cap in range(64):
        libc.prctl(PR_CAPBSET_DROP, ctypes.c_ulong(cap), 0, 0, 0)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    header, data = Header(0x20080522, 0), (Data * 2)()
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


def become_untrusted(job, uid, workdir, fds):
    """In a fresh child: its own folder, uid (or no capabilities), rlimits, fds 0..len(fds)-1 only."""
    devnull = os.open("/dev/null", os.O_RDONLY)
    fds = [devnull] + list(fds)
    # move the kept descriptors out of the way first, then onto 0, 1, 2, ...
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 1024 + i) for i, fd in enumerate(fds)]
    for target, fd in enumerate(high):
        os.dup2(fd, target)
    os.closerange(len(high), 1 << 16)
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    os.setpgid(0, 0)  # its own process group: a killpg(0) by the program reaches only the program
    os.chdir(workdir)
    limits = job["limits"]
    mem = int(limits["memory_mb"]) << 20
    for name, value in ((resource.RLIMIT_AS, (mem, mem)),
                        (resource.RLIMIT_CPU, (int(limits["cpu_seconds"]), int(limits["cpu_seconds"]) + 1)),
                        (resource.RLIMIT_NPROC, (int(limits["processes"]),) * 2),
                        (resource.RLIMIT_FSIZE, ((int(limits["file_mb"]) << 20),) * 2),
                        (resource.RLIMIT_NOFILE, (int(limits["open_files"]),) * 2),
                        (resource.RLIMIT_CORE, (0, 0))):
        resource.setrlimit(name, value)
    if job["switch_uid"]:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    elif job["mode"] == "userns":
        drop_capabilities()
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    prctl(PR_SET_DUMPABLE, 0)  # after the uid change, which may reset it
    os.environ.clear()
    os.environ.update({"PATH": "/usr/bin:/bin", "HOME": workdir, "LANG": "C.UTF-8", "TMPDIR": workdir})
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.stdout = os.fdopen(1, "w", buffering=1, errors="replace")
    sys.stderr = os.fdopen(2, "w", buffering=1, errors="replace")
    sys.stdin = os.fdopen(0, "r")


# --------------------------------------------------------------------------------------------
# The two untrusted children. Their code runs after `become_untrusted`; fds are 0 stdin (null),
# 1 stdout, 2 stderr, then their pipes.


def serve_program(program):
    """Program process: fds 3 = requests in, 4 = replies out. Run the program, announce its
    callables, then answer calls until the requests end."""
    requests, replies = os.fdopen(3, "rb"), os.fdopen(4, "wb", buffering=0)
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    try:
        exec(compile(program, "program.py", "exec"), namespace)
    except BaseException as error:  # noqa: BLE001 - SystemExit too: exiting before the tests is no pass
        sys.stderr.write(f"{type(error).__name__}: {error}\n")
        replies.write(b"dead " + repr(f"{type(error).__name__}: {error}"[:2000]).encode() + b"\n")
        sys.stderr.flush()
        os._exit(1)
    names = sorted(k for k, v in namespace.items() if callable(v) and not k.startswith("__"))
    replies.write(b"names " + repr(names).encode() + b"\n")
    for line in requests:
        try:
            name, args, kwargs = ast.literal_eval(line.decode())
            reply = b"ok " + repr(namespace[name](*args, **kwargs)).encode()
        except BaseException as error:  # noqa: BLE001 - reported to the tests process as a failure
            if isinstance(error, MemoryError):
                sys.stderr.write("MemoryError\n")
            reply = b"err " + repr(f"{type(error).__name__}: {error}"[:2000]).encode()
        replies.write(reply.replace(b"\n", b"\\n") + b"\n")
    sys.stdout.flush()
    os._exit(0)


class ProgramFailure(Exception):
    """A call into the program raised, returned no plain data, or the program process is gone."""


class CallTimeout(BaseException):
    """A call into the program took longer than the per-case limit (the program process is stuck)."""


def run_tests(setup, cases, expose, case_timeout):
    """Tests process: fds 3 = replies from the program, 4 = requests to it, 5 = nonce in,
    6 = verdict out. Writes `pass <nonce>` on fd 6 only if every case passed."""
    nonce = os.read(5, 256)
    os.close(5)
    verdict = os.fdopen(6, "wb", buffering=0)
    replies, requests = os.fdopen(3, "rb"), os.fdopen(4, "wb", buffering=0)

    def reply_line(timeout):
        ready, _, _ = select.select([replies], [], [], timeout)
        if not ready:
            raise CallTimeout("the program did not answer in time")
        return replies.readline(LINE_LIMIT).decode("utf-8", "replace")

    first = reply_line(None)
    if not first.startswith("names "):
        message = ast.literal_eval(first[5:]) if first.startswith("dead ") else "the program process ended"
        head = "cases " + "0" * len(cases) + "\n"  # every case fails
        verdict.write(head.encode() + b"error " + repr(f"program did not load: {message}").encode())
        os._exit(0)
    names = ast.literal_eval(first[6:])

    def proxy(name):
        def call(*args, **kwargs):
            try:
                requests.write(repr((name, args, kwargs)).encode().replace(b"\n", b"\\n") + b"\n")
            except (BrokenPipeError, ValueError):
                raise ProgramFailure("the program process is gone") from None
            line = reply_line(case_timeout)
            if line.startswith("ok "):
                try:
                    return ast.literal_eval(line[3:])
                except (ValueError, SyntaxError, MemoryError, RecursionError):
                    raise ProgramFailure(f"{name} returned something that is not plain data") from None
            if line.startswith("err "):
                raise ProgramFailure(ast.literal_eval(line[4:]))
            raise ProgramFailure("the program process is gone")
        call.__name__ = name
        return call

    namespace = {"__name__": "__tests__", "__builtins__": __builtins__}
    exec(compile(setup, "setup.py", "exec"), namespace)
    for name in (expose if expose is not None else names):
        namespace[name] = proxy(name)
    results, first_error = [], None
    for number, case in enumerate(cases):
        try:
            exec(compile(case, f"test_{number}.py", "exec"), dict(namespace))
            results.append(True)
        except CallTimeout:
            results.extend([False] * (len(cases) - number))
            first_error = first_error or ("timeout", f"case {number}: the program did not answer in time")
            break
        except BaseException as error:  # noqa: BLE001 - any exception fails the case
            results.append(False)
            kind = "failed" if isinstance(error, AssertionError) else "error"
            first_error = first_error or (kind, f"case {number}: {type(error).__name__}: {error}"[:2000])
    head = "cases " + "".join("1" if r else "0" for r in results) + "\n"
    if all(results):
        verdict.write(head.encode() + b"pass " + nonce)
    else:
        verdict.write(head.encode() + first_error[0].encode() + b" " + repr(first_error[1]).encode())
    os._exit(0)


# --------------------------------------------------------------------------------------------
# The trusted side: fork, watch, decide.


class Capture:
    """Reads a child's output pipe, keeping the first `cap` bytes and counting the rest."""

    def __init__(self, fd, cap):
        self.fd, self.cap, self.data, self.total, self.open = fd, cap, bytearray(), 0, True

    def read(self):
        chunk = os.read(self.fd, 65536)
        if not chunk:
            self.open = False
            os.close(self.fd)
            return
        self.total += len(chunk)
        room = self.cap - len(self.data)
        if room > 0:
            self.data += chunk[:room]

    def text(self):
        more = self.total - len(self.data)
        return self.data.decode("utf-8", "replace") + (f"\n[... {more} more bytes dropped]" if more else "")


def spawn(job, uid, workdir, fds, target, *args):
    pid = os.fork()
    if pid == 0:
        try:
            become_untrusted(job, uid, workdir, fds)
            target(*args)
        except BaseException as error:  # noqa: BLE001
            try:
                os.write(2, f"sandbox setup failed: {type(error).__name__}: {error}\n".encode())
            finally:
                os._exit(70)
        os._exit(0)
    return pid


def kill_everything(own_pid, uids):
    """SIGKILL every process of the sandbox users (or every descendant), until none is left."""
    for _ in range(50):
        found = False
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == own_pid:
                continue
            try:
                with open(f"/proc/{entry}/status") as f:
                    status = f.read()
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            uid = int(fields.get("Uid", "-1").split()[0])
            ppid = int(fields.get("PPid", "-1").strip())
            if uid in uids or ppid == own_pid:
                found = True
                try:
                    os.kill(int(entry), signal.SIGKILL)
                except OSError:
                    pass
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
        if not found:
            return
        time.sleep(0.01)


def supervise(job):
    notes = []
    if job["mode"] != "none":
        notes += hide_host(job)
    prctl(PR_SET_DUMPABLE, 0)
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    program_uid, tests_uid = job["uid"], job["uid"] + 1
    for folder, uid in (("/tmp/program", program_uid), ("/tmp/tests", tests_uid)):
        if job["mode"] == "none":
            folder = job["workdir"] + folder[4:]
        os.mkdir(folder, 0o700)
        if job["switch_uid"]:
            os.chown(folder, uid, uid)
    base = "/tmp" if job["mode"] != "none" else job["workdir"]
    cap = int(job["output_bytes"])
    t2p_r, t2p_w = os.pipe()
    p2t_r, p2t_w = os.pipe()
    nonce_r, nonce_w = os.pipe()
    verdict_r, verdict_w = os.pipe()
    pout_r, pout_w = os.pipe()
    perr_r, perr_w = os.pipe()
    tout_r, tout_w = os.pipe()

    program_pid = spawn(job, program_uid, base + "/program", [pout_w, perr_w, t2p_r, p2t_w],
                        serve_program, job["program"])
    tests_pid = spawn(job, tests_uid, base + "/tests", [tout_w, tout_w, p2t_r, t2p_w, nonce_r, verdict_w],
                      run_tests, job["setup"], job["cases"], job["expose"], float(job["case_timeout"]))
    for fd in (t2p_r, t2p_w, p2t_r, p2t_w, nonce_r, verdict_w, pout_w, perr_w, tout_w):
        os.close(fd)
    nonce = os.urandom(32).hex().encode()
    os.write(nonce_w, nonce)
    os.close(nonce_w)

    captures = {fd: Capture(fd, cap) for fd in (pout_r, perr_r, tout_r)}
    verdict = Capture(verdict_r, 1 << 16)
    captures[verdict_r] = verdict
    deadline = time.monotonic() + float(job["timeout"])
    exits, timed_out = {}, False
    while True:
        open_fds = [fd for fd, c in captures.items() if c.open]
        if tests_pid in exits and not verdict.open:
            break
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        ready = select.select(open_fds, [], [], min(left, 0.05))[0] if open_fds else time.sleep(0.01) or []
        for fd in ready:
            captures[fd].read()
        for pid in (program_pid, tests_pid):
            if pid not in exits:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    exits[pid] = status
    # the program process may end a moment after the tests process saw its pipes close
    grace = time.monotonic() + (0.2 if not timed_out else 0)
    while program_pid not in exits and time.monotonic() < grace:
        done, status = os.waitpid(program_pid, os.WNOHANG)
        if done:
            exits[program_pid] = status
        else:
            time.sleep(0.005)
    natural = dict(exits)  # exits before the sandbox killed anything
    kill_everything(os.getpid(), {program_uid, tests_uid} if job["switch_uid"] else set())
    for fd, c in captures.items():  # drain what is left, without blocking
        while c.open and select.select([fd], [], [], 0)[0]:
            c.read()

    text = bytes(verdict.data).decode("utf-8", "replace")
    head, _, rest = text.partition("\n")
    cases = [c == "1" for c in head[6:]] if head.startswith("cases ") else None
    stdout, stderr, tests_output = captures[pout_r].text(), captures[perr_r].text(), captures[tout_r].text()
    kind, _, detail = rest.partition(" ")
    signalled = [os.WTERMSIG(s) for s in natural.values() if os.WIFSIGNALED(s)]
    tests_exit = natural.get(tests_pid)
    if kind == "pass" and detail.encode() == nonce and tests_exit is not None and os.WIFEXITED(tests_exit) \
            and os.WEXITSTATUS(tests_exit) == 0:
        status, detail = "passed", "every test case passed"
    elif timed_out:
        status, detail = "timeout", f"wall-clock limit of {job['timeout']} s reached"
    elif kind == "timeout" or signal.SIGXCPU in signalled:
        status, detail = "timeout", _literal(detail) if kind == "timeout" else "CPU-time limit reached"
    elif "MemoryError" in stderr or "MemoryError" in tests_output or "MemoryError" in detail:
        status, detail = "memory", f"memory limit of {job['limits']['memory_mb']} MB reached"
    elif kind == "failed":
        status, detail = "failed", _literal(detail)
    elif signalled:
        status, detail = "killed", f"a sandbox process was killed by signal {signalled[0]}"
    else:
        status = "error"
        detail = _literal(detail) if kind == "error" else "the tests process ended without a verdict"
    return {"status": status, "detail": detail, "cases": cases, "stdout": stdout, "stderr": stderr,
            "tests_output": tests_output, "notes": notes}


def _literal(text):
    try:
        return str(ast.literal_eval(text))
    except (ValueError, SyntaxError):
        return text[:2000]


def main():
    job = json.loads(sys.stdin.read(64 << 20))
    for name in PRELOAD:
        __import__(name)
    try:
        result = supervise(job)
    except BaseException as error:  # noqa: BLE001 - the host needs a verdict either way
        result = {"status": "error", "detail": f"sandbox failure: {type(error).__name__}: {error}", "cases": None,
                  "stdout": "", "stderr": "", "tests_output": "", "notes": []}
    result["token"] = job["token"]
    sys.stdout.write(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
