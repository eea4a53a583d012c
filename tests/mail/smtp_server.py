"""A real SMTP server for the mail tests (aiosmtpd): accepts every message and writes
it, parsed, as one JSON file per message into OUT_DIR (written to a temporary name and
renamed, so a reader never sees half a file). With --cert/--key it offers STARTTLS
with that certificate and refuses mail before it. Prints "ready PORT" once listening,
and runs until stdin closes or it is killed.
"""

import argparse
import email
import email.policy
import json
import logging
import os
import ssl
import sys
import threading

from aiosmtpd.controller import Controller


class Recorder:
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        text = msg.get_body(("plain",))
        html = msg.get_body(("html",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_to": envelope.rcpt_tos,
            "from": str(msg["From"]),
            "to": str(msg["To"]),
            "subject": str(msg["Subject"]),
            "text": text.get_content() if text is not None else "",
            "html": html.get_content() if html is not None else "",
            "tls": session.ssl is not None,
        }
        with self.lock:
            self.count += 1
            n = self.count
        name = "%06d-%d.json" % (n, os.getpid())
        tmp = os.path.join(self.out_dir, "." + name)
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(self.out_dir, name))
        return "250 OK"


def main():
    # A client that gives up on an untrusted certificate is expected in the stories,
    # not an error worth a traceback.
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    args = p.parse_args()
    kwargs = {}
    if args.cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.cert, args.key)
        kwargs = {"tls_context": ctx, "require_starttls": True}
    controller = Controller(
        Recorder(args.out), hostname="127.0.0.1", port=args.port, **kwargs
    )
    controller.start()
    print("ready %d" % args.port, flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
