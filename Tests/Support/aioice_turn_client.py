"""aioice's TURN client against a relay: allocate, then through a channel to a UDP echo peer and back.

Usage: aioice_turn_client.py RELAY_HOST RELAY_PORT SECRET PEER_HOST COUNT [USERNAME PASSWORD]
The credentials are Firezone's (spec snownet.md §3.12), derived here independently of the Swift code:
username "<expiry>:<salt>", password base64(sha256("<expiry>:<secret>:<salt>")) without padding; or, when
USERNAME and PASSWORD are given (SECRET then "-"), those, as a portal minted them.
TURN_TRANSPORT=tcp in the environment reaches the relay over TCP instead of UDP (RFC 8656 §3; aioice frames STUN
and ChannelData on the stream itself); TURN_TRANSPORT=tls over TLS, trusting only the certificate in TURN_CA and
checking it names RELAY_HOST.
Prints "relayed <address> <count> of <count>" and exits 0 when every datagram came back from the peer's address.
"""
import asyncio
import base64
import hashlib
import os
import ssl
import sys
import time

from aioice import turn


def firezone_credentials(secret):
    expiry = int(time.time()) + 3600
    salt = "aioice"
    digest = hashlib.sha256(f"{expiry}:{secret}:{salt}".encode()).digest()
    return f"{expiry}:{salt}", base64.b64encode(digest).decode().rstrip("=")


async def main(relay_host, relay_port, secret, peer_host, count, credentials=None):
    loop = asyncio.get_running_loop()

    class Echo(asyncio.DatagramProtocol):
        def connection_made(self, transport):
            self.transport = transport

        def datagram_received(self, data, addr):
            self.transport.sendto(data, addr)

    peer_transport, _ = await loop.create_datagram_endpoint(Echo, local_addr=(peer_host, 0))
    peer = peer_transport.get_extra_info("sockname")[:2]
    received = asyncio.Queue()

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, data, addr):
            received.put_nowait((data, addr[:2]))

    username, password = credentials or firezone_credentials(secret)
    wanted = os.environ.get("TURN_TRANSPORT", "udp")
    context = ssl.create_default_context(cafile=os.environ["TURN_CA"]) if wanted == "tls" else False
    transport, _ = await turn.create_turn_endpoint(Client, server_addr=(relay_host, relay_port),
                                                   username=username, password=password,
                                                   transport="udp" if wanted == "udp" else "tcp", ssl=context)
    relayed = transport.get_extra_info("sockname")
    answered = 0
    for index in range(count):
        message = b"datagram %d through the relay" % index
        transport.sendto(message, peer)
        data, addr = await asyncio.wait_for(received.get(), 5)
        if data == message and addr == peer:
            answered += 1
    print(f"relayed {relayed[0]}:{relayed[1]} {answered} of {count}", flush=True)
    transport.close()
    peer_transport.close()
    return answered == count


if __name__ == "__main__":
    given = (sys.argv[6], sys.argv[7]) if len(sys.argv) == 8 else None
    ok = asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), given))
    sys.exit(0 if ok else 1)
