// The portal ids and address types (`ResourceId`, `IpAddress`, `SocketAddress` …) live in SansIO, shared with the
// other layers; users of the portal messages get them without a second import.
@_exported import SansIO

import Ice

/// ICE's credentials type, which the portal's messages carry; named here so users need no `import Ice`.
public typealias IceCredentials = Ice.IceCredentials
