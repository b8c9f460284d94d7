"""Makes COUNT TURN allocations on a relay with coturn's REST API credentials, each from a socket of its own (closed
after; the allocation stays for its lifetime). Stdlib only: long-term credentials, 401 then a signed ALLOCATE.

Usage: turn_allocate.py RELAY_HOST RELAY_PORT SECRET COUNT
Prints "allocated N of COUNT".
"""
import base64
import hashlib
import hmac
import os
import socket
import struct
import sys
import time

MAGIC = 0x2112A442


def attribute(kind, value):
    padding = (4 - len(value) % 4) % 4
    return struct.pack("!HH", kind, len(value)) + value + b"\0" * padding


def message(method, transaction, attributes, key=None):
    body = b"".join(attributes)
    if key is not None:
        length = len(body) + 24
        header = struct.pack("!HHI", method, length, MAGIC) + transaction
        mac = hmac.new(key, header + body, hashlib.sha1).digest()
        body += attribute(0x0008, mac)
    return struct.pack("!HHI", method, len(body), MAGIC) + transaction + body


def parse(data):
    kind, length = struct.unpack("!HH", data[:4])
    attributes, offset = {}, 20
    while offset + 4 <= 20 + length:
        atype, alen = struct.unpack("!HH", data[offset:offset + 4])
        attributes[atype] = data[offset + 4:offset + 4 + alen]
        offset += 4 + alen + (4 - alen % 4) % 4
    return kind, attributes


def allocate(host, port, username, password):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.settimeout(2)
    try:
        request = [attribute(0x0019, b"\x11\0\0\0")]
        sock.sendto(message(0x0003, os.urandom(12), request), (host, port))
        kind, attributes = parse(sock.recv(2048))
        realm, nonce = attributes[0x0014], attributes[0x0015]
        key = hashlib.md5(username.encode() + b":" + realm + b":" + password.encode()).digest()
        signed = request + [attribute(0x0006, username.encode()), attribute(0x0014, realm), attribute(0x0015, nonce)]
        sock.sendto(message(0x0003, os.urandom(12), signed, key), (host, port))
        kind, _ = parse(sock.recv(2048))
        return kind == 0x0103
    except (socket.timeout, KeyError):
        return False
    finally:
        sock.close()


def main(host, port, secret, count):
    username = f"{int(time.time()) + 3600}:bench"
    password = base64.b64encode(hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode()
    made = sum(allocate(host, port, username, password) for _ in range(count))
    print(f"allocated {made} of {count}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
