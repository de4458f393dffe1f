# labserv's Python worker. `wsgi APP` starts one per worker process with `python -c` and
# this text (it ships inside the binary, as does the extension module it loads). It
# imports the app once, loads `_labserv` (labserv's HTTP code, built as a Python
# extension) and hands it the app: from then on the extension accepts connections on the
# listening socket the worker inherited and calls the app in this process, one request
# at a time. What stays here in Python is what is easier said in Python: loading the
# app, `wsgi.input` on top of the extension's pull, `wsgi.file_wrapper`, and reporting
# an app's exception.
#
# Arguments: the app, then the descriptors the worker inherits: the listening socket,
# the control socket (b"O" once serving, or b"X" and why not), the slot, the
# supervisor's stderr (for labserv's own log lines) and the board; then where the
# extension module is, the read end of the supervisor's life pipe (-1: none, the kernel
# ends the worker with the supervisor) and the worker's seat on the board.
import os
import sys


def _load(spec):
    import importlib
    import importlib.util

    target, _, name = spec.partition(":")
    if target.endswith(".py") or os.sep in target:
        path = os.path.abspath(target)
        if not os.path.isfile(path):
            raise ImportError("no such file: %s" % target)
        sys.path.insert(0, os.path.dirname(path))
        modname = os.path.splitext(os.path.basename(path))[0]
        loader = importlib.util.spec_from_file_location(modname, path)
        module = importlib.util.module_from_spec(loader)
        sys.modules[modname] = module
        loader.loader.exec_module(module)
    else:
        sys.path.insert(0, os.getcwd())
        module = importlib.import_module(target)
    names = [name] if name else ["app", "application"]
    for attr in names:
        call = attr.endswith("()")
        found = getattr(module, attr[:-2] if call else attr, None)
        if found is not None:
            app = found() if call else found
            if not callable(app):
                raise TypeError("%s:%s is not callable" % (target, attr))
            return app
    raise AttributeError("%s has no %s" % (target, " or ".join(names)))


def _asgi(app):
    """Whether `app` is an ASGI app (FastAPI, Starlette, Quart, Connexion 3, Django's
    asgi.py): a coroutine function or a coroutine `__call__`, or a callable taking the
    three arguments (scope, receive, send) where WSGI takes two."""
    import inspect

    if inspect.iscoroutinefunction(app) or inspect.iscoroutinefunction(getattr(app, "__call__", None)):
        return True
    try:
        params = inspect.signature(app).parameters.values()
    except (TypeError, ValueError):
        return False
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(1 for p in params if p.kind in kinds and p.default is p.empty) == 3


def _watch_supervisor(fd):
    """Ends the worker when the supervisor is gone, however it went (kill -9 too): it
    holds the write end of this pipe open and never writes, so a read returns only once
    it has died."""
    import threading

    def watch():
        try:
            os.read(fd, 1)
        finally:
            os._exit(1)

    threading.Thread(target=watch, name="labserv-supervisor", daemon=True).start()


def _extension(path):
    import importlib.machinery
    import importlib.util

    loader = importlib.machinery.ExtensionFileLoader("_labserv", path)
    spec = importlib.util.spec_from_loader("_labserv", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


class Input:
    """wsgi.input: the request body, pulled from labserv as the app reads it."""

    def __init__(self, pull):
        self.pull = pull
        self.buf = b""
        self.done = False

    def _more(self):
        if self.done:
            return False
        data = self.pull()
        if not data:
            self.done = True
            return False
        self.buf += data
        return True

    def read(self, size=-1):
        if size is None or size < 0:
            while self._more():
                pass
            data, self.buf = self.buf, b""
            return data
        while len(self.buf) < size and self._more():
            pass
        data, self.buf = self.buf[:size], self.buf[size:]
        return data

    def readline(self, size=-1):
        while True:
            end = self.buf.find(b"\n")
            if end >= 0 or (size is not None and 0 <= size <= len(self.buf)) or not self._more():
                break
        end = len(self.buf) if end < 0 else end + 1
        if size is not None and 0 <= size < end:
            end = size
        data, self.buf = self.buf[:end], self.buf[end:]
        return data

    def readlines(self, hint=-1):
        lines, total = [], 0
        for line in self:
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                break
        return lines

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line


class FileWrapper:
    """wsgi.file_wrapper: a file labserv sends itself, without it passing through
    Python; iterable in blocks as PEP 3333 asks, for any other use."""

    def __init__(self, filelike, blksize=8192):
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self):
        return self

    def __next__(self):
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration


def file_fd(result):
    """(fd, offset) of the real file a FileWrapper wraps, else None."""
    try:
        fd = result.filelike.fileno()
        offset = os.lseek(fd, 0, os.SEEK_CUR)
    except (AttributeError, OSError, ValueError):
        return None
    if hasattr(result.filelike, "tell"):
        try:
            offset = result.filelike.tell()
        except (OSError, ValueError):
            pass
    return fd, offset


def report(environ, error, tb):
    """Prints an app's exception to wsgi.errors; returns it in one line."""
    import traceback

    errors = sys.stderr
    print("labserv: %s %s failed:" % (environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")), file=errors)
    traceback.print_exception(type(error), error, tb, file=errors)
    errors.flush()
    return "%s: %s" % (type(error).__name__, error)


def _why(e):
    import traceback

    where = ""
    frames = [f for f in traceback.extract_tb(e.__traceback__) if not f.filename.startswith("<") and "importlib" not in f.filename]
    if frames and not isinstance(e, SyntaxError):
        where = " (%s, line %d)" % (frames[-1].filename, frames[-1].lineno)
    return "%s: %s%s" % (type(e).__name__, e, where)


def main():
    spec = sys.argv[1]
    listener, ctl, slot, log, board, config = (int(a) for a in sys.argv[2:8])
    ext = sys.argv[8]
    life, seat = int(sys.argv[9]), int(sys.argv[10])
    if life >= 0:
        _watch_supervisor(life)
    import socket

    sock = socket.socket(fileno=ctl)
    try:
        app = _load(spec)
    except BaseException as e:  # the supervisor prints this one line and exits 2
        sock.send(b"X" + _why(e).encode("utf-8", "replace"))
        return
    if _asgi(app):
        why = ("it is an ASGI app (async, called with scope, receive, send); labserv's wsgi "
               "hosts WSGI apps only: serve it with uvicorn or granian --interface asgi, "
               "or give labserv a WSGI app")
        sock.send(b"X" + why.encode())
        return
    try:
        labserv = _extension(ext)
    except BaseException as e:
        sock.send(b"X" + ("labserv's extension module did not load: " + _why(e)).encode("utf-8", "replace"))
        return
    empty = Input(lambda: b"")
    empty.done = True
    helpers = {
        "base": {
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            # The input ends where the body does, also without Content-Length (chunked):
            # Werkzeug and WebOb read a chunked body only when this says so.
            "wsgi.input_terminated": True,
            "wsgi.file_wrapper": FileWrapper,
        },
        "empty": empty,
        "Input": Input,
        "FileWrapper": FileWrapper,
        "file_fd": file_fd,
        "report": report,
    }
    sock.detach()  # the extension says b"O" once it serves
    labserv.serve(app, helpers, (listener, ctl, slot, log, board, config), seat)


main()
