#!/usr/bin/env python3
"""Setup and checks of bench/soak.sh (standard library only; HTTP through bench/seed.py).

  soak.py images DIR N                 write N small PNGs (520 x 200, each its own
                                       colours) as DIR/1.png .. DIR/N.png
  soak.py upload BASE SESSION FILE     upload FILE through POST /media as the logged-in
                                       author of SESSION; print the image's path
  soak.py author BASE POST_PATH        print the author page linked from a post page
  soak.py check DB ACK_DIR             every acknowledged write in ACK_DIR's files is in
                                       the SQLite database DB; print what was found, exit
                                       1 when anything is missing
"""

import glob
import html
import os
import re
import sqlite3
import struct
import sys
import uuid
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import seed  # noqa: E402  (bench/seed.py: Browser, read_session)

WIDTH, HEIGHT = 520, 200


def png(width, height, rgb_of_row):
    """A truecolour PNG, one colour a row (so it compresses to a few KiB)."""

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + bytes(rgb_of_row(y)) * width for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def images(folder, n):
    os.makedirs(folder, exist_ok=True)
    for i in range(1, n + 1):
        data = png(WIDTH, HEIGHT, lambda y: ((i * 37) % 256, (y + i * 11) % 256, (i * 71) % 256))
        with open(os.path.join(folder, f"{i}.png"), "wb") as f:
            f.write(data)


def browser_for(base, session):
    cookie, token = seed.read_session(session)
    b = seed.Browser(base)
    for pair in cookie.split("; "):
        k, _, v = pair.partition("=")
        b.cookies[k] = v
    return b, token


def upload(base, session, path):
    b, token = browser_for(base, session)
    boundary = uuid.uuid4().hex
    with open(path, "rb") as f:
        data = f.read()
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{token}\r\n"
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"soak.png\"\r\n"
        "Content-Type: image/png\r\n\r\n"
    ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
    b.conn.request(
        "POST",
        "/media?to=new",
        body=body,
        headers={
            "Cookie": b.cookie_header(),
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
    )
    resp = b.conn.getresponse()
    # The page escapes '/' (as &#x2F;) in the Markdown it shows.
    page = html.unescape(resp.read().decode("utf-8", "replace"))
    m = re.search(r"\]\((/media/\d+/[^)\s]+)\)", page)
    if resp.status != 200 or not m:
        sys.exit(f"soak: the setup upload answered {resp.status}")
    print(m.group(1))


def author(base, post_path):
    status, page, _ = seed.Browser(base).request("GET", post_path)
    m = re.search(r'href="(/authors/[^"/]+)"', page)
    if status != 200 or not m:
        sys.exit(f"soak: no author link on {post_path} (status {status})")
    print(m.group(1))


def check(db, ack_dir):
    posts, media = set(), set()
    for path in glob.glob(os.path.join(ack_dir, "ack-*")):
        for line in open(path):
            kind, _, value = line.strip().partition(" ")
            if kind == "post":
                posts.add(value)
            elif kind == "media":
                media.add(int(value))
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    have_posts = {row[0] for row in conn.execute("SELECT slug FROM posts")}
    # An upload is whole when its row and its full-size file are there.
    have_media = {
        row[0]
        for row in conn.execute(
            "SELECT m.id FROM media m JOIN media_files f ON f.media_id = m.id AND f.name = m.name"
        )
    }
    missing_posts = sorted(posts - have_posts)
    missing_media = sorted(media - have_media)
    print(
        f"acknowledged writes: {len(posts)} posts, {len(media)} uploads; "
        f"missing from the database: {len(missing_posts)} posts, {len(missing_media)} uploads"
    )
    if missing_posts or missing_media:
        print(f"  first missing: posts {missing_posts[:5]}, uploads {missing_media[:5]}")
        sys.exit(1)
    if not posts or not media:
        sys.exit("soak: the run acknowledged no post or no upload: nothing was checked")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "images":
        images(args[0], int(args[1]))
    elif cmd == "upload":
        upload(*args)
    elif cmd == "author":
        author(*args)
    elif cmd == "check":
        check(*args)
    else:
        sys.exit(__doc__)
