/// Names of STUN message types and attributes, for reports.
enum StunAttributeNames {
    static func name(of type: UInt16) -> String {
        switch type {
        case 0x0001: "MAPPED-ADDRESS"
        case 0x0006: "USERNAME"
        case 0x0008: "MESSAGE-INTEGRITY"
        case 0x0009: "ERROR-CODE"
        case 0x000C: "CHANNEL-NUMBER"
        case 0x000D: "LIFETIME"
        case 0x0012: "XOR-PEER-ADDRESS"
        case 0x0013: "DATA"
        case 0x0014: "REALM"
        case 0x0015: "NONCE"
        case 0x0016: "XOR-RELAYED-ADDRESS"
        case 0x0017: "REQUESTED-ADDRESS-FAMILY"
        case 0x0019: "REQUESTED-TRANSPORT"
        case 0x001C: "MESSAGE-INTEGRITY-SHA256"
        case 0x0020: "XOR-MAPPED-ADDRESS"
        case 0x0024: "PRIORITY"
        case 0x0025: "USE-CANDIDATE"
        case 0x8000: "ADDITIONAL-ADDRESS-FAMILY"
        case 0x8022: "SOFTWARE"
        case 0x8028: "FINGERPRINT"
        case 0x8029: "ICE-CONTROLLED"
        case 0x802A: "ICE-CONTROLLING"
        default: "0x" + String(type, radix: 16)
        }
    }

    /// A message type word as method and class.
    static func messageName(_ type: UInt16) -> String {
        let method = (type & 0x000F) | ((type & 0x00E0) >> 1) | ((type & 0x3E00) >> 2)
        let klass = ((type & 0x0010) >> 4) | ((type & 0x0100) >> 7)
        let methodName = switch method {
        case 0x001: "binding"
        case 0x003: "allocate"
        case 0x004: "refresh"
        case 0x006: "send"
        case 0x007: "data"
        case 0x008: "create-permission"
        case 0x009: "channel-bind"
        default: "method-0x" + String(method, radix: 16)
        }
        let className = ["request", "indication", "success", "error"][Int(klass)]
        return methodName + " " + className
    }
}
