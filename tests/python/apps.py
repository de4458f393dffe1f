"""WSGI apps for labserv's tests of `wsgi module:app`: one callable per behaviour."""
import json
import os
import sys
import time


def _wait_for(path):
    # Blocks until the test creates `path`: the test decides when the app goes on.
    deadline = time.time() + 20
    while not os.path.exists(path) and time.time() < deadline:
        time.sleep(0.01)


def environ(environ, start_response):
    keys = ["REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "SERVER_PROTOCOL",
            "CONTENT_TYPE", "CONTENT_LENGTH", "HTTP_X_BOARD", "HTTP_PROXY", "wsgi.url_scheme"]
    seen = {k: environ.get(k) for k in keys}
    seen["version"] = list(environ["wsgi.version"])
    seen["multiprocess"] = environ["wsgi.multiprocess"]
    seen["multithread"] = environ["wsgi.multithread"]
    seen["run_once"] = environ["wsgi.run_once"]
    seen["native"] = all(type(v) is str for k, v in environ.items() if not k.startswith("wsgi."))
    seen["body"] = environ["wsgi.input"].read().decode("latin-1")
    print("environ served", file=environ["wsgi.errors"])
    body = json.dumps(seen).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def lines(environ, start_response):
    stream = environ["wsgi.input"]
    first = stream.readline()
    two = stream.readlines(1)
    rest = [line for line in stream]
    body = json.dumps([first.decode(), [l.decode() for l in two], [l.decode() for l in rest]])
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body.encode()]


def store(environ, start_response):
    total = 0
    with open(os.environ["STORE"], "wb") as out:
        while True:
            chunk = environ["wsgi.input"].read(65536)
            if not chunk:
                break
            out.write(chunk)
            total += len(chunk)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(total).encode()]


class Stream:
    """A body that yields, waits for the test, yields again; records close()."""

    def __init__(self, flag, closed):
        self.flag, self.closed = flag, closed

    def __iter__(self):
        yield b"first\n"
        _wait_for(self.flag)
        yield b"second\n"

    def close(self):
        open(self.closed, "w").close()


def stream(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return Stream(os.environ["FLAG"], os.environ["CLOSED"])


def writer(environ, start_response):
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"written, ")
    return [b"then returned"]


def files(environ, start_response):
    f = open(os.environ["SEND"], "rb")
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](f, 65536)


def faults(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/raise":
        raise RuntimeError("the mock broke")
    if path == "/exit":
        os._exit(7)
    if path == "/crash":
        import ctypes
        ctypes.string_at(0)
    if path == "/hang":
        time.sleep(60)
    if path == "/wait":
        if "STARTED" in os.environ:
            # Tells the test that this request is in the app.
            with open(os.environ["STARTED"], "w") as f:
                f.write("started")
        _wait_for(os.environ["FLAG"])
    if path == "/die-when-flagged":
        # In the app until the flag appears, then the worker is killed outright.
        with open(os.environ["STARTED"], "w") as f:
            f.write("started")
        _wait_for(os.environ["FLAG"])
        os.kill(os.getpid(), 9)
    if path == "/late-error":
        def body():
            yield b"part"
            raise RuntimeError("broke midway")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return body()
    if path == "/bad-header":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Connection", "close")])
        return [b"x"]
    if path == "/exc-info":
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("changed my mind")
        except ValueError:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")], sys.exc_info())
        return [b"unavailable"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("pid %d" % os.getpid()).encode()]


def whoami(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [sys.prefix.encode()]


async def asgi(scope, receive, send):
    # An ASGI app (what FastAPI and Starlette are): labserv's wsgi refuses it at start.
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"asgi"})


class AsgiClass:
    async def __call__(self, scope, receive, send):
        await asgi(scope, receive, send)


asgi_object = AsgiClass()


def asgi_plain(scope, receive, send):
    # A plain function of ASGI's three arguments (returning a coroutine).
    return asgi(scope, receive, send)


def head(environ, start_response):
    # What Flask does for HEAD: the GET's Content-Length and no body.
    body = b"" if environ["REQUEST_METHOD"] == "HEAD" else b"forty bytes of firmware status text here"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "40")])
    return [body]
