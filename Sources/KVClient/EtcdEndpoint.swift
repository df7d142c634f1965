// Endpoint parsing: etcd clients accept `host:port`, `http://host:port` and `https://host:port`.

/// One etcd client URL.
public struct EtcdEndpoint: Sendable, Hashable, CustomStringConvertible {
    /// Host name or IP address, without brackets for IPv6.
    public var host: String
    /// TCP port.
    public var port: Int
    /// True for `https://` endpoints.
    public var isTLS: Bool

    public init(host: String, port: Int, isTLS: Bool) {
        self.host = host
        self.port = port
        self.isTLS = isTLS
    }

    /// Parses `host:port`, `http://host:port`, `https://host:port` or `[v6]:port`; a missing port is 2379.
    public init?(parsing text: String) {
        var rest = Substring(text)
        var isTLS = false
        if rest.hasPrefix("https://") {
            isTLS = true
            rest = rest.dropFirst("https://".count)
        } else if rest.hasPrefix("http://") {
            rest = rest.dropFirst("http://".count)
        }
        if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
        var host: Substring
        var portText: Substring? = nil
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return nil }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") { portText = after.dropFirst() } else if !after.isEmpty { return nil }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        } else {
            host = rest
        }
        // A fully qualified name (DNS discovery gives them with the root's dot) is the same host.
        if host.count > 1 && host.hasSuffix(".") { host = host.dropLast() }
        guard !host.isEmpty else { return nil }
        var port = 2379
        if let portText {
            guard let parsed = Int(portText), (0...65535).contains(parsed) else { return nil }
            port = parsed
        }
        self.init(host: String(host), port: port, isTLS: isTLS)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
