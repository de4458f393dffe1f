#!/usr/bin/env python3
"""A Python WSGI app served as a CGI script: `wsgi examples/wsgi_cgi.py`."""
from wsgiref.handlers import CGIHandler


def app(environ, start_response):
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    text = "Hello from Python via CGI: {} {}, {} bytes\n".format(
        environ["REQUEST_METHOD"], environ.get("PATH_INFO") or "/", len(body)
    )
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
    return [text.encode("utf-8")]


if __name__ == "__main__":
    CGIHandler().run(app)
