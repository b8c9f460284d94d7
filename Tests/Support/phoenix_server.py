"""A Phoenix V1 server on the `websockets` package that misbehaves on command, for the PhoenixChannel
transport tests. Independent of our code: it parses and writes frames with Python's json module.

    python3 phoenix_server.py [--tls CERT KEY] BEHAVIOUR[,BEHAVIOUR...]

Each connection attempt takes the next behaviour of the list (the last one repeats):
    normal          reply ok to phx_join, push `init`, reply ok to heartbeats
    silent-join     never reply to phx_join
    status:CODE     refuse the WebSocket upgrade with HTTP CODE and a plain-text body
    status:CODE:retry=VALUE  the same with `Retry-After: VALUE` (`+N` is an HTTP date N seconds from now)
    problem:CODE:REASON  refuse with HTTP CODE and RFC 9457 problem details whose `code` is REASON
    deaf-heartbeats join and push `init` as normal, but never answer a heartbeat
    close-frame     join, push `init`, then send a WebSocket Close frame (1001 "going away")
    close-after-init  join, push `init`, then drop the TCP connection without a close frame
    token-expired   join, then push `disconnect` {"reason": "token_expired"}
    join-error      reply to phx_join with an error
    garbage         join, send frames that are not Phoenix V1, then a valid push `after_garbage`
    slow-upgrade:MS accept the WebSocket upgrade only after MS milliseconds, then as normal

Reports one JSON object per line on stdout: {"listening": port}, {"request": {"path", "headers"}},
{"frame": text}, {"disconnected": n}, {"close_received": code} (the Close frame the client answered with).
"""
import asyncio
import email.utils
import json
import ssl
import sys
import time

from websockets.asyncio.server import serve
from websockets.http11 import Response
from websockets.datastructures import Headers

args = sys.argv[1:]
tls = None
if args and args[0] == "--tls":
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(args[1], args[2])
    args = args[3:]
script = args[0].split(",")
attempt = 0


def report(**fields):
    print(json.dumps(fields), flush=True)


def behaviour_of(connection):
    return connection.firezone_behaviour


async def process_request(connection, request):
    global attempt
    behaviour = script[min(attempt, len(script) - 1)]
    attempt += 1
    connection.firezone_behaviour = behaviour
    report(request={"path": request.path, "headers": list(request.headers.raw_items())})
    if behaviour.startswith("status:"):
        parts = behaviour.split(":")
        headers = [("Content-Type", "text/plain"), ("Content-Length", "7")]
        for option in parts[2:]:
            name, value = option.split("=", 1)
            if name == "retry":
                if value.startswith("+"):
                    value = email.utils.formatdate(time.time() + int(value[1:]), usegmt=True)
                headers.append(("Retry-After", value))
        return Response(int(parts[1]), "Refused", Headers(headers), b"refused")
    if behaviour.startswith("problem:"):
        _, code, reason = behaviour.split(":")
        body = json.dumps({"type": "about:blank", "title": "Refused", "status": int(code), "detail": f"detail of {reason}",
                           "code": reason}).encode()
        headers = [("Content-Type", "application/problem+json; charset=utf-8"), ("Content-Length", str(len(body)))]
        return Response(int(code), "Refused", Headers(headers), body)
    if behaviour.startswith("slow-upgrade:"):
        await asyncio.sleep(int(behaviour.split(":")[1]) / 1000)
    return None


def frame(topic, event, payload, ref=None):
    return json.dumps({"topic": topic, "event": event, "payload": payload, "ref": ref})


async def handler(websocket):
    behaviour = behaviour_of(websocket)
    try:
        async for text in websocket:
            report(frame=text)
            message = json.loads(text)
            event, topic, ref = message["event"], message["topic"], message["ref"]
            if event == "phx_join":
                if behaviour == "silent-join":
                    continue
                if behaviour == "join-error":
                    await websocket.send(frame(topic, "phx_reply", {"status": "error", "response": {"reason": "invalid_version"}}, ref))
                    continue
                await websocket.send(frame(topic, "phx_reply", {"status": "ok", "response": {}}, ref))
                await websocket.send(frame(topic, "init", {"attempt": attempt}))
                if behaviour == "close-after-init":
                    websocket.transport.abort()
                    return
                if behaviour == "close-frame":
                    await websocket.close(1001, "going away")
                    received = websocket.protocol.close_rcvd
                    report(close_received=received.code if received is not None else 0)
                    return
                if behaviour == "token-expired":
                    await websocket.send(frame(topic, "disconnect", {"reason": "token_expired"}))
                if behaviour == "garbage":
                    await websocket.send("not json")
                    await websocket.send(b"\x00binary")
                    await websocket.send(json.dumps({"topic": topic, "event": "string_ref", "payload": {}, "ref": "1"}))
                    await websocket.send("[1,2]")
                    await websocket.send(frame(topic, "phx_reply", {"status": "ok"}, None))
                    await websocket.send(frame(topic, "after_garbage", {}))
            elif event == "heartbeat" and behaviour != "deaf-heartbeats":
                await websocket.send(frame("phoenix", "phx_reply", {"status": "ok", "response": {}}, ref))
    except Exception:
        pass
    finally:
        report(disconnected=attempt)


async def main():
    async with serve(handler, "127.0.0.1", 0, process_request=process_request, ssl=tls) as server:
        port = server.sockets[0].getsockname()[1]
        report(listening=port)
        await asyncio.Future()


asyncio.run(main())
