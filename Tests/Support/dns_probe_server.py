"""A nameserver for NameserverSetTests: answers every query over UDP and TCP on ADDRESS:53 with RCODE
(an A record 192.0.2.53 when NOERROR), DELAY_MS after it arrived. RCODE -1 answers garbage instead: bytes that
are no DNS message over UDP, and over TCP a length prefix of 500 followed by 3 bytes and a close. Prints "ready"
once both sockets listen.

Usage: python3 dns_probe_server.py ADDRESS DELAY_MS RCODE
"""
import socket
import struct
import sys
import threading
import time

address, delay, rcode = sys.argv[1], int(sys.argv[2]) / 1000, int(sys.argv[3])


def answer(query: bytes) -> bytes:
    ident, flags = struct.unpack("!HH", query[:4])
    end = query.index(b"\x00", 12) + 5
    question = query[12:end]
    record = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton("192.0.2.53") if rcode == 0 else b""
    header = struct.pack("!HHHHHH", ident, 0x8180 | (flags & 0x0100) | rcode, 1, 1 if record else 0, 0, 0)
    time.sleep(delay)
    return header + question + record


def serve_udp(sock: socket.socket) -> None:
    while True:
        query, peer = sock.recvfrom(4096)
        reply = b"\x00\x01junk" if rcode < 0 else answer(query)
        threading.Thread(target=lambda: sock.sendto(reply, peer), daemon=True).start()


def serve_tcp_connection(connection: socket.socket) -> None:
    with connection:
        length = struct.unpack("!H", connection.recv(2, socket.MSG_WAITALL))[0]
        query = connection.recv(length, socket.MSG_WAITALL)
        if rcode < 0:
            connection.sendall(struct.pack("!H", 500) + b"abc")
            return
        response = answer(query)
        connection.sendall(struct.pack("!H", len(response)) + response)


def serve_tcp(sock: socket.socket) -> None:
    while True:
        connection, _ = sock.accept()
        threading.Thread(target=serve_tcp_connection, args=(connection,), daemon=True).start()


udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind((address, 53))
tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
tcp.bind((address, 53))
tcp.listen(16)
threading.Thread(target=serve_udp, args=(udp,), daemon=True).start()
print("ready", flush=True)
serve_tcp(tcp)
