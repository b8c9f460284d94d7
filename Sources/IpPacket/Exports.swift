// IpPacket's addresses (`IpAddress`, `IPv4Address`, `IPv6Address`) live in SansIO, shared with the other
// layers; users of IpPacket get them without a second import.
@_exported import SansIO
