// The configuration and connect-request types are part of the server's API.
@_exported import PortalInput
