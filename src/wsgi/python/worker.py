# labserv's Python worker. `wsgi APP` starts one per worker process with `python -c` and
# this text (it ships inside the binary). It imports the app once, then answers the
# requests that labserv's HTTP front hands it over the socket on its standard input, one
# at a time. The front does all of HTTP; this side only runs the app (PEP 3333).
#
# Frames, both ways: one byte of kind, four bytes of length (big-endian), the payload.
#   front -> worker  Q request: one byte (1 if a body can be read) then the environ as
#                      NUL-separated name, value, name, value ... (latin-1)
#                    D request body bytes, the answer to an R (empty: the body has ended)
#                    K the front has opened the file of an F
#                    C the client has gone: stop producing the body
#   worker -> front  O ready (after the import)     X failed: a message
#                    W a whole response: head length (4 bytes), head, body
#                    H head: status NUL name NUL value ...   B a body chunk   E the end
#                    R wants up to N bytes of request body (N: 8 bytes)
#                    F send this file: fd, offset, count (8 bytes each; count 2**64-1: all)
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


class _Gone(Exception):
    """The front has closed the socket: labserv is stopping."""


def main():
    spec = sys.argv[1]
    # The socket came as standard input; the app gets /dev/null there instead.
    fd = os.dup(0)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    import socket

    sock = socket.socket(fileno=fd)
    rfile = sock.makefile("rb", 65536)
    send = sock.sendall

    def frame(kind, payload=b""):
        return kind + len(payload).to_bytes(4, "big") + payload

    def read_frame():
        head = rfile.read(5)
        if len(head) < 5:
            raise _Gone()
        size = int.from_bytes(head[1:], "big")
        return head[:1], rfile.read(size) if size else b""

    try:
        app = _load(spec)
    except BaseException as e:  # the front prints this one line and exits 2
        import traceback

        where = ""
        frames = [f for f in traceback.extract_tb(e.__traceback__) if not f.filename.startswith("<") and "importlib" not in f.filename]
        if frames and not isinstance(e, SyntaxError):
            where = " (%s, line %d)" % (frames[-1].filename, frames[-1].lineno)
        why = "%s: %s%s" % (type(e).__name__, e, where)
        send(frame(b"X", why.encode("utf-8", "replace")))
        return

    class Input:
        """wsgi.input: the request body, pulled from the front as the app reads."""

        def __init__(self):
            self.buf = b""
            self.done = False

        def _more(self, want):
            if self.done:
                return False
            send(frame(b"R", max(want, 65536).to_bytes(8, "big")))
            kind, data = read_frame()
            if kind != b"D":
                raise IOError("labserv: unexpected %r while reading the body" % kind)
            if not data:
                self.done = True
                return False
            self.buf += data
            return True

        def read(self, size=-1):
            if size is None or size < 0:
                while self._more(1 << 20):
                    pass
                data, self.buf = self.buf, b""
                return data
            while len(self.buf) < size and self._more(size - len(self.buf)):
                pass
            data, self.buf = self.buf[:size], self.buf[size:]
            return data

        def readline(self, size=-1):
            while True:
                end = self.buf.find(b"\n")
                if end >= 0 or (0 <= size <= len(self.buf)) or not self._more(8192):
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

        def finish(self):
            """Lets the front know the rest of the body is not wanted."""
            self.done = True

    class FileWrapper:
        """wsgi.file_wrapper: a file the front sends itself, without it passing
        through Python; iterable in blocks as PEP 3333 asks, for any other use."""

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

    empty = Input()
    empty.done = True
    errors = sys.stderr
    base = {
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": errors,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.file_wrapper": FileWrapper,
    }
    send(frame(b"O"))

    def encode_head(status, headers):
        parts = [status]
        for name, value in headers:
            parts.append(name)
            parts.append(value)
        return "\0".join(parts).encode("latin-1")

    def cancelled():
        try:
            peek = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return False
        if peek:
            read_frame()
        return True

    def file_fd(result):
        if type(result) is not FileWrapper:
            return None
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

    while True:
        try:
            kind, payload = read_frame()
        except _Gone:
            return
        if kind != b"Q":
            continue  # a late C for a response that had already ended
        fields = payload[1:].decode("latin-1").split("\0")
        it = iter(fields)
        environ = dict(zip(it, it))
        environ.update(base)
        if "HTTPS" in environ:
            environ["wsgi.url_scheme"] = "https"
        wsgi_input = Input() if payload[:1] == b"1" else empty
        environ["wsgi.input"] = wsgi_input
        state = [None, None, False]  # status, headers, head sent

        def start_response(status, headers, exc_info=None):
            if exc_info:
                try:
                    if state[2]:
                        raise exc_info[1].with_traceback(exc_info[2])
                finally:
                    exc_info = None
            elif state[0] is not None:
                raise AssertionError("start_response called a second time without exc_info")
            if type(status) is not str:
                raise TypeError("status must be a str, not %s" % type(status).__name__)
            for pair in headers:
                if type(pair) is not tuple or len(pair) != 2:
                    raise TypeError("each header must be a (name, value) tuple: %r" % (pair,))
                if type(pair[0]) is not str or type(pair[1]) is not str:
                    raise TypeError("header names and values must be str: %r" % (pair,))
            state[0], state[1] = status, headers
            return write

        def write(data):
            if state[0] is None:
                raise AssertionError("write() before start_response")
            if not state[2]:
                state[2] = True
                send(frame(b"H", encode_head(state[0], state[1])) + frame(b"B", data))
            elif data:
                send(frame(b"B", data))

        result = None
        try:
            result = app(environ, start_response)
            if not state[2]:
                sent = file_fd(result)
                if sent is not None and state[0] is not None:
                    fd, offset = sent
                    count = (1 << 64) - 1
                    send(
                        frame(b"H", encode_head(state[0], state[1]))
                        + frame(
                            b"F",
                            fd.to_bytes(8, "big")
                            + offset.to_bytes(8, "big")
                            + count.to_bytes(8, "big"),
                        )
                    )
                    state[2] = True
                    read_frame()  # K: the front has the file open
                    result.close() if hasattr(result, "close") else None
                    result = None
                    send(frame(b"E"))
                    continue
            if type(result) is list and len(result) <= 1 and not state[2]:
                body = result[0] if result else b""
                if type(body) is not bytes:
                    raise TypeError("the app's body must be bytes, not %s" % type(body).__name__)
                if state[0] is None:
                    raise AssertionError("the app returned without calling start_response")
                head = encode_head(state[0], state[1])
                send(frame(b"W", len(head).to_bytes(4, "big") + head + body))
                continue
            chunks = 0
            for data in result:
                if type(data) is not bytes:
                    raise TypeError("the app's body must be bytes, not %s" % type(data).__name__)
                if not data:
                    continue
                if chunks and cancelled():
                    break
                chunks += 1
                write(data)
            if state[0] is None:
                raise AssertionError("the app returned without calling start_response")
            if not state[2]:
                state[2] = True
                send(frame(b"H", encode_head(state[0], state[1])) + frame(b"E"))
            else:
                send(frame(b"E"))
        except _Gone:
            return
        except BaseException as e:
            import traceback

            print("labserv: %s %s failed:" % (environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")), file=errors)
            traceback.print_exc(file=errors)
            errors.flush()
            try:
                send(frame(b"X", ("%s: %s" % (type(e).__name__, e)).encode("utf-8", "replace")))
            except OSError:
                return
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                return
        finally:
            if result is not None and hasattr(result, "close"):
                try:
                    result.close()
                except BaseException:
                    import traceback

                    traceback.print_exc(file=errors)
            wsgi_input.finish()


main()
