#!/usr/bin/env python3
"""HTTP side of bench/run.sh (standard library only).

  seed.py login  BASE EMAIL PASSWORD OUT     log in; write OUT as shell-quoted
                                             COOKIE=... and TOKEN=... (the session's
                                             cookie header and its CSRF token)
  seed.py posts  BASE SESSIONS TOTAL START   create TOTAL posts of about 2 KB through
                                             POST /posts, numbered from START, spread
                                             over the sessions files listed in SESSIONS
                                             (one path a line), 8 at a time
  seed.py anon   BASE OUT                    a pre-login CSRF cookie and token (for the
                                             login POST), written like `login`
  seed.py older  BASE PATH                   print the "Older posts" link of PATH
  seed.py slug   BASE                        print the path of the newest post
"""

import concurrent.futures
import html
import http.client
import re
import shlex
import sys
import time
import urllib.parse

TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
WORDS = (
    "garden river stone quiet morning letter window harbour lantern meadow "
    "journey winter summer orchard bridge market island forest candle signal "
    "engine compass mirror thunder valley ribbon pocket silver copper autumn"
).split()
TAGS = ["rust", "notes", "travel", "cooking", "music", "books", "sqlite", "web"]


class Browser:
    """One keep-alive connection with a cookie jar (name -> value)."""

    def __init__(self, base):
        u = urllib.parse.urlsplit(base)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        self.cookies = {}

    def request(self, method, path, form=None):
        headers = {}
        body = None
        if self.cookies:
            headers["Cookie"] = self.cookie_header()
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.conn.request(method, path, body=body, headers=headers)
        resp = self.conn.getresponse()
        data = resp.read().decode("utf-8", "replace")
        for name, value in resp.getheaders():
            if name.lower() == "set-cookie":
                pair = value.split(";", 1)[0]
                k, _, v = pair.partition("=")
                if v == "" or "Max-Age=0" in value or "1970" in value:
                    self.cookies.pop(k.strip(), None)
                else:
                    self.cookies[k.strip()] = v.strip()
        return resp.status, data, resp.getheader("Location")

    def cookie_header(self):
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def token(self, path):
        status, page, _ = self.request("GET", path)
        m = TOKEN_RE.search(page)
        if status != 200 or not m:
            sys.exit(f"seed: no CSRF token on {path} (status {status})")
        return m.group(1)


def write_session(out, cookie, token):
    with open(out, "w") as f:
        f.write(f"COOKIE={shlex.quote(cookie)}\nTOKEN={shlex.quote(token)}\n")


def login(base, email, password, out):
    b = Browser(base)
    token = b.token("/login")
    status, page, _ = b.request(
        "POST", "/login", {"email": email, "password": password, "csrf_token": token}
    )
    if status != 303:
        sys.exit(f"seed: login of {email} answered {status}")
    token = b.token("/dashboard")
    b.cookies.pop("_flash", None)
    write_session(out, b.cookie_header(), token)


def anon(base, out):
    b = Browser(base)
    token = b.token("/login")
    write_session(out, b.cookie_header(), token)


def read_session(path):
    values = {}
    for line in open(path):
        k, _, v = line.strip().partition("=")
        values[k] = shlex.split(v)[0]
    return values["COOKIE"], values["TOKEN"]


def body_of(n):
    """About 2 KB of Markdown, every post a little different; "garden" is everywhere."""
    paras = []
    size = 0
    i = n
    while size < 2000:
        words = [WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(40)]
        para = "The garden " + " ".join(words) + "."
        paras.append(para)
        size += len(para) + 2
        i += 1
    return "\n\n".join(paras)


def post_worker(base, session, numbers, failures):
    cookie, token = read_session(session)
    b = Browser(base)
    for pair in cookie.split("; "):
        k, _, v = pair.partition("=")
        b.cookies[k] = v
    for n in numbers:
        form = {
            "title": f"Bench post {n} about {WORDS[n % len(WORDS)]}",
            "body": body_of(n),
            "tags": f"{TAGS[n % len(TAGS)]}, {TAGS[(n // 3) % len(TAGS)]}",
            "publish": "true",
            "csrf_token": token,
        }
        for attempt in range(3):
            try:
                status, _, _ = b.request("POST", "/posts", form)
                break
            except (http.client.HTTPException, OSError):
                b = Browser(base)
                b.cookies = dict(p.partition("=")[::2] for p in cookie.split("; "))
                status = None
        if status != 303:
            failures.append((n, status))


def posts(base, sessions_file, total, start):
    sessions = [line.strip() for line in open(sessions_file) if line.strip()]
    workers = 8
    chunks = [list(range(start + w, start + total, workers)) for w in range(workers)]
    failures = []
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        futures = [
            pool.submit(post_worker, base, sessions[w % len(sessions)], chunk, failures)
            for w, chunk in enumerate(chunks)
        ]
        for f in futures:
            f.result()
    took = time.monotonic() - t0
    if failures:
        sys.exit(f"seed: {len(failures)} posts failed, first {failures[:3]}")
    print(f"{total} posts in {took:.1f} s ({total / took:.0f} posts/s)")


def older(base, path):
    status, page, _ = Browser(base).request("GET", path)
    m = re.search(r'<a href="([^"]+)" rel="next"', page)
    if status != 200 or not m:
        sys.exit(f"seed: no older link on {path} (status {status})")
    print(html.unescape(m.group(1)))


def slug(base):
    status, page, _ = Browser(base).request("GET", "/")
    m = re.search(r'href="(/posts/[^"/]+)"', page)
    if status != 200 or not m:
        sys.exit(f"seed: no post on the home page (status {status})")
    print(html.unescape(m.group(1)))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "login":
        login(*args)
    elif cmd == "anon":
        anon(*args)
    elif cmd == "posts":
        posts(args[0], args[1], int(args[2]), int(args[3]))
    elif cmd == "older":
        older(*args)
    elif cmd == "slug":
        slug(*args)
    else:
        sys.exit(__doc__)
