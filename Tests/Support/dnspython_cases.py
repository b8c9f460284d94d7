#!/usr/bin/env python3
"""DNS test cases from dnspython (an independent implementation) for the DnsNat tests.

`generate N`: prints N JSON lines {"hex", "valid", and when valid the decoded content} of varied queries and
responses (compression, EDNS0, A/AAAA/PTR/CNAME/SRV/TXT/HTTPS records) and malformed variants (truncation,
pointer loops, forward pointers, inflated counts, trailing bytes), with dnspython's verdict.
`parse`: reads hex messages (one per line) on stdin and prints what dnspython decodes, the same shape.
"""
import json
import random
import sys

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset

random.seed(5769)
NAMES = ["app.example.com", "example.com", "a.b.c.d.example.org", "x" * 63 + ".example.net", "mail.corp.internal",
         "_sip._udp.example.com", "1.0.96.100.in-addr.arpa", "MiXeD.Case.Example.COM"]
TYPES = ["A", "AAAA", "PTR", "CNAME", "SRV", "TXT", "HTTPS"]


def rdata_text(rdtype):
    return {
        "A": lambda: "100.96.%d.%d" % (random.randrange(256), random.randrange(1, 255)),
        "AAAA": lambda: "fd00:2021:1111:8000::%x" % random.randrange(1, 65535),
        "PTR": lambda: random.choice(NAMES) + ".",
        "CNAME": lambda: random.choice(NAMES) + ".",
        "SRV": lambda: "%d %d %d %s." % (random.randrange(10), random.randrange(100), random.randrange(1, 65535), random.choice(NAMES)),
        "TXT": lambda: " ".join('"%s"' % ("t" * random.randrange(0, 40)) for _ in range(random.randrange(1, 4))),
        "HTTPS": lambda: '1 . alpn="h2,h3"',
    }[rdtype]()


def describe(message):
    def name(n):
        return n.to_text(omit_final_dot=True) if n != dns.name.root else "."

    def records(section):
        out = []
        for rrset in section:
            for rdata in rrset:
                entry = {"name": name(rrset.name), "type": rdata.rdtype, "class": rrset.rdclass, "ttl": rrset.ttl}
                t = dns.rdatatype.to_text(rdata.rdtype)
                if t in ("A", "AAAA"):
                    entry["address"] = rdata.address
                elif t in ("PTR", "CNAME"):
                    entry["target"] = name(rdata.target)
                elif t == "SRV":
                    entry["srv"] = [rdata.priority, rdata.weight, rdata.port, name(rdata.target)]
                elif t == "TXT":
                    entry["txt"] = [s.hex() for s in rdata.strings]
                else:
                    entry["rdata"] = rdata.to_wire().hex()
                out.append(entry)
        return out

    return {"id": message.id, "flags": message.flags, "rcode": message.rcode() & 0xF,
            "questions": [{"name": name(q.name), "type": q.rdtype, "class": q.rdclass} for q in message.question],
            "answers": records(message.answer), "authority": records(message.authority),
            "additional": records(message.additional),
            "edns": None if message.edns < 0 else {"payload": message.payload, "options": len(message.options)}}


def random_message():
    qname = random.choice(NAMES)
    qtype = random.choice(TYPES)
    query = dns.message.make_query(qname, qtype, use_edns=random.random() < 0.5, payload=1232)
    query.id = random.randrange(65536)
    if random.random() < 0.4:
        return query
    response = dns.message.make_response(query)
    response.set_rcode(random.choice([0, 0, 0, 2, 3]))
    for section in (response.answer, response.authority, response.additional):
        for _ in range(random.randrange(0, 4)):
            rdtype = random.choice(TYPES)
            owner = random.choice([qname] + NAMES) + "."
            section.append(dns.rrset.from_text(owner, random.randrange(0, 86400), "IN", rdtype, rdata_text(rdtype)))
    return response


def malformed(wire):
    choice = random.randrange(5)
    if choice == 0 and len(wire) > 13:
        return wire[:random.randrange(12, len(wire))]                      # truncated
    if choice == 1:
        return wire[:12] + b"\xc0\x0c" + wire[14:]                           # name pointing at itself
    if choice == 2:
        return wire[:12] + b"\xc0\xff" + wire[14:]                           # forward pointer
    if choice == 3:
        return wire[:4] + b"\x01\x00" + wire[6:]                             # 256 questions claimed
    return wire + b"\x00\x01"                                                 # trailing bytes


def verdict(wire):
    try:
        return describe(dns.message.from_wire(wire, one_rr_per_rrset=True))
    except Exception:
        return None


if sys.argv[1] == "generate":
    for index in range(int(sys.argv[2])):
        wire = random_message().to_wire()
        if index % 3 == 2:
            wire = malformed(wire)
        decoded = verdict(wire)
        print(json.dumps({"hex": wire.hex(), "valid": decoded is not None, "message": decoded}))
else:
    for line in sys.stdin:
        decoded = verdict(bytes.fromhex(line.strip()))
        print(json.dumps({"hex": line.strip(), "valid": decoded is not None, "message": decoded}))
