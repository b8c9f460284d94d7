#!/usr/bin/env python3
"""An aioice ICE peer for the Ice interop tests, driven over stdin/stdout with JSON lines.

It prints {"ufrag", "pwd", "candidates": [...]} (candidate strings without "candidate:"), reads the same
from stdin for the remote side, connects, sends b"ping" over the nominated pair, waits for b"pong", and
prints {"connected": true, "received": "pong"} or an error. Run: aioice_peer.py controlling|controlled
"""
import asyncio
import json
import sys

import aioice


async def main() -> None:
    controlling = sys.argv[1] == "controlling"
    connection = aioice.Connection(ice_controlling=controlling, components=1, use_ipv4=True, use_ipv6=False)
    await connection.gather_candidates()
    print(json.dumps({"ufrag": connection.local_username, "pwd": connection.local_password,
                      "candidates": [c.to_sdp() for c in connection.local_candidates]}), flush=True)
    remote = json.loads(await asyncio.get_event_loop().run_in_executor(None, sys.stdin.readline))
    connection.remote_username = remote["ufrag"]
    connection.remote_password = remote["pwd"]
    for candidate in remote["candidates"]:
        await connection.add_remote_candidate(aioice.Candidate.from_sdp(candidate))
    await connection.add_remote_candidate(None)
    try:
        await asyncio.wait_for(connection.connect(), 20)
        await connection.send(b"ping")
        data = await asyncio.wait_for(connection.recv(), 10)
        print(json.dumps({"connected": True, "received": data.decode()}), flush=True)
    except Exception as error:  # reported to the test, which fails with it
        print(json.dumps({"connected": False, "error": repr(error)}), flush=True)
    finally:
        await connection.close()


asyncio.run(main())
