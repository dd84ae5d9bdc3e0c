"""A pre-forking WSGI web app using pulseline, shaped like `gunicorn --preload`: the client is
created once in the master, which then forks workers that serve requests and track events.

    PULSELINE_WRITE_KEY=plw_... PULSELINE_HOST=http://127.0.0.1:8080 python app.py [--demo]

Without `--demo` it serves on 127.0.0.1:8000 until Ctrl-C. With `--demo` it serves on a free
port, sends itself a few requests, stops, and prints what it sent (the test suite runs this).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import urllib.request
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pulseline

WORKERS = 2


def app(environ, start_response):  # type: ignore[no-untyped-def]
    user = environ.get("HTTP_X_USER") or "anonymous"
    path = environ.get("PATH_INFO", "/")
    # Both calls return at once: the events are sent by the SDK's background thread.
    pulseline.page(user, path, {"method": environ["REQUEST_METHOD"], "worker_pid": os.getpid()})
    if path == "/signup":
        pulseline.track(user, "signup", {"plan": "pro", "seats": 3})
    body = json.dumps({"ok": True, "worker_pid": os.getpid()}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def serve(server) -> None:  # type: ignore[no-untyped-def]
    """A worker: serves requests until SIGTERM, then finishes the request in hand and returns.

    The handler only sets a flag. Raising from it (`sys.exit`) would be racy: a SIGTERM that
    lands while wsgiref handles a request raises SystemExit inside the handler's bare
    `except:`, which logs it and keeps serving, and the master then waits forever.
    """
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the master's; it stops the workers
    # Installed: from here a SIGTERM (even one sent before this worker got this far, held
    # pending since the fork) only sets the flag.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    server.timeout = 0.1  # how often the loop looks at the flag while idle
    # Every worker polls the one listening socket, and a connection wakes them all: those that
    # lose the race to accept it must not block in accept() (a blocking socket would hold such
    # a worker there, deaf to the flag, until another connection came). Non-blocking, the
    # loser's accept fails with EAGAIN, which socketserver ignores, and it looks at the flag.
    server.socket.setblocking(False)
    try:
        while not stopping:
            server.handle_request()
    finally:
        server.server_close()


def main() -> None:
    demo = "--demo" in sys.argv
    pulseline.init(
        os.environ["PULSELINE_WRITE_KEY"],
        host=os.environ.get("PULSELINE_HOST", "http://127.0.0.1:8080"),
    )
    # Captured in the master before the fork: sent once, by the master, never by a worker.
    pulseline.track("system", "app_started", {"workers": WORKERS})

    server = make_server("127.0.0.1", 0 if demo else 8000, app, handler_class=QuietHandler)
    workers = []
    # Blocked across the fork, so a worker cannot be killed by a SIGTERM that arrives before
    # it has installed its handler; each worker unblocks it once ready.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    for _ in range(WORKERS):
        pid = os.fork()
        if pid == 0:
            serve(server)
            # Deliver what this worker tracked, then leave without running the master's
            # cleanup (os._exit skips atexit, so shut the client down explicitly).
            os._exit(0 if pulseline.shutdown().complete else 1)
        workers.append(pid)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})

    port = server.server_address[1]
    requests = 0
    try:
        if demo:
            for i in range(10):
                path = "/signup" if i % 2 else "/"
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}{path}", headers={"X-User": f"demo-user-{i}"}
                )
                opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
                with opener.open(request, timeout=10) as response:
                    assert response.status == 200
                requests += 1
        else:
            print(f"serving on http://127.0.0.1:{port} with {WORKERS} workers", flush=True)
            signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        for pid in workers:
            os.kill(pid, signal.SIGTERM)
        codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in workers]
    outcome = pulseline.shutdown()
    print(json.dumps({"requests": requests, "worker_exit_codes": codes, "master_complete": outcome.complete}))


if __name__ == "__main__":
    main()
