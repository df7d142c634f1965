internal import CResolv
internal import Glibc

/// One SRV record: where a service of a domain listens.
package struct SRVRecord: Equatable, Sendable {
    package var priority: UInt16
    package var weight: UInt16
    package var port: UInt16
    /// The host, as DNS names it: with its trailing dot.
    package var target: String

    package init(priority: UInt16, weight: UInt16, port: UInt16, target: String) {
        self.priority = priority
        self.weight = weight
        self.port = port
        self.target = target
    }
}

package struct DNSDiscoveryError: Error, CustomStringConvertible, Equatable {
    package let description: String
    package init(_ description: String) { self.description = description }
}

/// etcd's DNS discovery: a cluster's members (`--discovery-srv` of the server, which bootstraps
/// from them instead of `--initial-cluster`) and its client endpoints (etcdctl's and the gateway's
/// `--discovery-srv`) from the SRV records of a domain, with etcd's service names and messages.
package enum DNSDiscovery {
    /// Looks up `_service._tcp.domain`; given to the functions below so that tests can answer it.
    package typealias Lookup = (_ service: String, _ domain: String) throws(DNSDiscoveryError) -> [SRVRecord]
    /// Resolves a host and port to the address a connection would go to ("ip:port"), or nil.
    package typealias Resolve = (_ host: String, _ port: Int) -> String?

    // MARK: the server's bootstrap

    /// The initial cluster (`name=url` entries) from `_etcd-server-ssl[-NAME]._tcp.DOMAIN` (https)
    /// and `_etcd-server[-NAME]._tcp.DOMAIN` (http), as etcd 3.5 builds it: the record whose address
    /// is one of this member's advertised peer URLs' takes `memberName`, the others "0", "1", ...
    /// (names only this member sees: member IDs come from the URLs). One count runs over both
    /// services, where etcd starts again at "0" for the second and so merges two records into one
    /// member. Refused when no record is found, or none is this member's.
    package static func initialCluster(
        domain: String, serviceName: String, memberName: String, advertisePeerURLs: [String],
        lookup: Lookup = lookupSRV, resolve: Resolve = resolveTCPAddress
    ) throws(DNSDiscoveryError) -> [String] {
        let suffix = serviceName.isEmpty ? "" : "-" + serviceName
        var entries: [String] = []
        var failures: [DNSDiscoveryError] = []
        var otherNames = 0
        for (scheme, service) in [("https", "etcd-server-ssl" + suffix), ("http", "etcd-server" + suffix)] {
            do {
                entries += try cluster(
                    scheme: scheme, service: service, domain: domain, memberName: memberName,
                    advertisePeerURLs: advertisePeerURLs, otherNames: &otherNames, lookup: lookup, resolve: resolve)
            } catch {
                failures.append(error)
            }
        }
        guard !entries.isEmpty else {
            throw DNSDiscoveryError(failures.map(\.description).joined(separator: "; "))
        }
        guard entries.contains(where: { $0.hasPrefix(memberName + "=") }) else {
            throw DNSDiscoveryError("cannot find local etcd member \"\(memberName)\" in SRV records")
        }
        return entries
    }

    /// One service's members (etcd's `srv.GetCluster`).
    private static func cluster(
        scheme: String, service: String, domain: String, memberName: String, advertisePeerURLs: [String],
        otherNames: inout Int, lookup: Lookup, resolve: Resolve
    ) throws(DNSDiscoveryError) -> [String] {
        // This member's advertised peer URLs by the address they resolve to.
        var ownURLs: [String: (scheme: String, url: String)] = [:]
        for url in advertisePeerURLs {
            guard let parsed = try? MemberURL(parsing: url) else { continue }
            guard let address = resolve(parsed.host, parsed.port) else {
                throw DNSDiscoveryError("error querying DNS SRV records for _\(service) lookup \(parsed.host): no such host")
            }
            ownURLs[address] = (parsed.scheme, url)
        }
        let records: [SRVRecord]
        do {
            records = try lookup(service, domain)
        } catch {
            throw DNSDiscoveryError("error querying DNS SRV records for _\(service) \(error)")
        }
        var entries: [String] = []
        var failure: DNSDiscoveryError?
        for record in records {
            let host = record.target.hasSuffix(".") ? String(record.target.dropLast()) : record.target
            guard let address = resolve(record.target, Int(record.port)) else {
                failure = DNSDiscoveryError("lookup \(record.target): no such host")
                continue
            }
            let urlHost = host.contains(":") ? "[\(host)]:\(record.port)" : "\(host):\(record.port)"
            let own = ownURLs[address]
            if let own, own.scheme != scheme {
                failure = DNSDiscoveryError(
                    "bootstrap at \(scheme)://\(urlHost) from DNS for \(service) has scheme mismatch with expected peer \(own.url)")
                continue
            }
            var name = memberName
            if own == nil {
                name = String(otherNames)
                otherNames += 1
            }
            entries.append("\(name)=\(scheme)://\(urlHost)")
        }
        if entries.isEmpty, let failure {
            throw DNSDiscoveryError("error querying DNS SRV records for _\(service) \(failure)")
        }
        return entries
    }

    // MARK: clients

    /// Client endpoints (`https://host:port` from `_etcd-client-ssl[-NAME]._tcp.DOMAIN` first, then
    /// `http://` ones from `_etcd-client[-NAME]._tcp.DOMAIN`), as etcd's `srv.GetClient`: an error
    /// only when both lookups fail. Hosts keep DNS's trailing dot, as etcdctl prints them.
    package static func clientEndpoints(
        domain: String, serviceName: String, lookup: Lookup = lookupSRV
    ) throws(DNSDiscoveryError) -> [String] {
        let suffix = serviceName.isEmpty ? "" : "-" + serviceName
        var endpoints: [String] = []
        var failures: [DNSDiscoveryError] = []
        for (scheme, service) in [("https", "etcd-client-ssl" + suffix), ("http", "etcd-client" + suffix)] {
            do {
                for record in try lookup(service, domain) {
                    let host = record.target.contains(":") ? "[\(record.target)]" : record.target
                    endpoints.append("\(scheme)://\(host):\(record.port)")
                }
            } catch {
                failures.append(error)
            }
        }
        if failures.count == 2 {
            throw DNSDiscoveryError("dns lookup errors: \(failures[0]) and \(failures[1])")
        }
        return endpoints
    }

    // MARK: DNS

    /// The SRV records of `_service._tcp.domain` through the system's resolver (`/etc/resolv.conf`,
    /// its search list applied as Go applies it), lowest priority first (records of one priority in the answer's order; Go shuffles them by
    /// weight).
    package static func lookupSRV(service: String, domain: String) throws(DNSDiscoveryError) -> [SRVRecord] {
        let name = "_\(service)._tcp.\(domain)"
        var answer = [UInt8](repeating: 0, count: 65_535)
        let length = kvd_res_search(name, 1 /* ns_c_in */, 33 /* ns_t_srv */, &answer, Int32(answer.count))
        guard length >= 0 else {
            // Go's wording: a name without records and a missing name are both "no such host".
            let reason = kvd_h_errno() == TRY_AGAIN ? "server misbehaving" : "no such host"
            throw DNSDiscoveryError("lookup \(name): \(reason)")
        }
        do {
            return try parseSRVAnswer(Array(answer[..<min(Int(length), answer.count)]))
        } catch {
            throw DNSDiscoveryError("lookup \(name): \(error)")
        }
    }

    /// The SRV records of a DNS answer (RFC 1035 message, RFC 2782 records), in priority order.
    package static func parseSRVAnswer(_ message: [UInt8]) throws(DNSDiscoveryError) -> [SRVRecord] {
        var reader = MessageReader(message: message)
        let questions = try reader.uint16(at: 4)
        let answers = try reader.uint16(at: 6)
        reader.offset = 12
        for _ in 0..<questions {
            _ = try reader.name()
            reader.offset += 4  // type, class
        }
        var records: [SRVRecord] = []
        for _ in 0..<answers {
            _ = try reader.name()
            let type = try reader.uint16(at: reader.offset)
            let dataLength = Int(try reader.uint16(at: reader.offset + 8))
            let data = reader.offset + 10
            guard data + dataLength <= message.count else { throw DNSDiscoveryError("cannot unmarshal DNS message") }
            if type == 33 {
                guard dataLength >= 7 else { throw DNSDiscoveryError("cannot unmarshal DNS message") }
                reader.offset = data + 6
                let target = try reader.name()
                records.append(SRVRecord(
                    priority: try reader.uint16(at: data), weight: try reader.uint16(at: data + 2),
                    port: try reader.uint16(at: data + 4), target: target))
            }
            reader.offset = data + dataLength
        }
        return records.enumerated().sorted { ($0.element.priority, $0.offset) < ($1.element.priority, $1.offset) }.map(\.element)
    }

    private struct MessageReader {
        let message: [UInt8]
        var offset = 0

        func uint16(at position: Int) throws(DNSDiscoveryError) -> UInt16 {
            guard position >= 0, position + 2 <= message.count else { throw DNSDiscoveryError("cannot unmarshal DNS message") }
            return UInt16(message[position]) << 8 | UInt16(message[position + 1])
        }

        /// A domain name at `offset` (compression pointers followed), with its trailing dot; moves
        /// `offset` past it.
        mutating func name() throws(DNSDiscoveryError) -> String {
            var labels: [String] = []
            var position = offset
            var jumped = false
            var jumps = 0
            while true {
                guard position < message.count else { throw DNSDiscoveryError("cannot unmarshal DNS message") }
                let length = Int(message[position])
                if length == 0 {
                    if !jumped { offset = position + 1 }
                    break
                }
                if length & 0xC0 == 0xC0 {
                    let pointer = Int(try uint16(at: position) & 0x3FFF)
                    jumps += 1
                    guard jumps <= 64, pointer < message.count else { throw DNSDiscoveryError("cannot unmarshal DNS message") }
                    if !jumped { offset = position + 2 }
                    jumped = true
                    position = pointer
                    continue
                }
                guard length & 0xC0 == 0, position + 1 + length <= message.count else {
                    throw DNSDiscoveryError("cannot unmarshal DNS message")
                }
                labels.append(String(decoding: message[(position + 1)...(position + length)], as: UTF8.self))
                position += 1 + length
            }
            return labels.joined(separator: ".") + "."
        }
    }

    /// The address a TCP connection to `host:port` goes to, as Go's `net.ResolveTCPAddr` picks it
    /// (the first IPv4 address, else the first): "ip:port", "[ip6]:port".
    package static func resolveTCPAddress(host: String, port: Int) -> String? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let list else { return nil }
        defer { freeaddrinfo(list) }
        var chosen: UnsafeMutablePointer<addrinfo>?
        var entry: UnsafeMutablePointer<addrinfo>? = list
        while let current = entry {
            if current.pointee.ai_family == AF_INET { chosen = current; break }
            if chosen == nil { chosen = current }
            entry = current.pointee.ai_next
        }
        guard let chosen, let address = chosen.pointee.ai_addr else { return nil }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        if chosen.pointee.ai_family == AF_INET {
            var ip = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
            guard inet_ntop(AF_INET, &ip, &text, socklen_t(text.count)) != nil else { return nil }
            return "\(Self.string(text)):\(port)"
        }
        var ip = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
        guard inet_ntop(AF_INET6, &ip, &text, socklen_t(text.count)) != nil else { return nil }
        return "[\(Self.string(text))]:\(port)"
    }

    /// Whether two lists of URLs name the same endpoints once their hosts are resolved (etcd's
    /// URLStringsEqual), so that a member advertising `https://10.0.1.10:2380` is the member DNS
    /// names `https://infra0.example.com:2380`. Lists that are equal as text are so without a lookup.
    package static func sameEndpoints(_ a: [String], _ b: [String], resolve: Resolve = resolveTCPAddress) -> Bool {
        if Set(a) == Set(b) { return true }
        guard a.count == b.count else { return false }
        func resolved(_ urls: [String]) -> [String]? {
            var out: [String] = []
            for url in urls {
                guard let parsed = try? MemberURL(parsing: url), let address = resolve(parsed.host, parsed.port) else { return nil }
                out.append(parsed.scheme + "://" + address)
            }
            return out.sorted()
        }
        guard let left = resolved(a), let right = resolved(b) else { return false }
        return left == right
    }

    private static func string(_ text: [CChar]) -> String {
        String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
