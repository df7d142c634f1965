// etcd's DNS discovery: SRV answers decoded from DNS's wire format, and the initial cluster and
// client endpoints built from them as etcd 3.5 builds them (lookups and address resolution
// answered by the test; Tests/Cluster/dns-discovery.sh runs members against a DNS server).
import Testing
@testable import Server

@Suite struct DNSDiscoveryTests {
    /// A DNS name in wire format.
    private func name(_ text: String) -> [UInt8] {
        text.split(separator: ".").flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) } + [0]
    }

    private func uint16(_ value: Int) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xFF)] }

    /// A response to `_etcd-server-ssl._tcp.kvd.test` SRV with `records` (priority, port, target),
    /// the second target compressed against the first's domain.
    private func answer(_ records: [(Int, Int, String)]) -> [UInt8] {
        var message = uint16(0x1234) + uint16(0x8180) + uint16(1) + uint16(records.count) + uint16(0) + uint16(0)
        let questionName = message.count
        message += name("_etcd-server-ssl._tcp.kvd.test") + uint16(33) + uint16(1)
        var firstTarget: Int?
        for (priority, port, target) in records {
            message += [0xC0, UInt8(questionName)] + uint16(33) + uint16(1) + [0, 0, 0, 60]
            var data = uint16(priority) + uint16(10) + uint16(port)
            if let firstTarget, let dot = target.firstIndex(of: ".") {
                // "m2" then a pointer to the first target's "kvd.test".
                let label = target[..<dot]
                data += [UInt8(label.utf8.count)] + Array(label.utf8) + [0xC0, UInt8(firstTarget + 3)]
            } else {
                firstTarget = message.count + 2 + 6
                data += name(target)
            }
            message += uint16(data.count) + data
        }
        return message
    }

    @Test func srvAnswersAreDecodedWithCompressedNamesInPriorityOrder() throws {
        let records = try DNSDiscovery.parseSRVAnswer(answer([(10, 2380, "m1.kvd.test"), (0, 2381, "m2.kvd.test")]))
        #expect(records == [
            SRVRecord(priority: 0, weight: 10, port: 2381, target: "m2.kvd.test."),
            SRVRecord(priority: 10, weight: 10, port: 2380, target: "m1.kvd.test."),
        ])
    }

    @Test func malformedAnswersAreRefusedNotTrapped() {
        let whole = answer([(0, 2380, "m1.kvd.test"), (0, 2381, "m2.kvd.test")])
        for length in [0, 5, 13, 40, whole.count - 1] {
            #expect(throws: DNSDiscoveryError.self) { try DNSDiscovery.parseSRVAnswer(Array(whole[..<length])) }
        }
        // A compression pointer to itself.
        var looping = whole
        looping[12] = 0xC0
        looping[13] = 12
        #expect(throws: DNSDiscoveryError.self) { try DNSDiscovery.parseSRVAnswer(looping) }
    }

    private let addresses = ["m1.kvd.test.": "10.0.0.1", "m2.kvd.test.": "10.0.0.2", "m3.kvd.test.": "10.0.0.3",
                             "m1.kvd.test": "10.0.0.1", "m2.kvd.test": "10.0.0.2"]

    /// The names above, and addresses as themselves.
    private func resolve(_ host: String, _ port: Int) -> String? {
        (addresses[host] ?? (host.first?.isNumber == true ? host : nil)).map { "\($0):\(port)" }
    }

    @Test func theInitialClusterNamesThisMemberAndNumbersTheOthers() throws {
        var asked: [String] = []
        let lookup: DNSDiscovery.Lookup = { service, domain throws(DNSDiscoveryError) in
            asked.append("_\(service)._tcp.\(domain)")
            guard service == "etcd-server-ssl-east" else { throw DNSDiscoveryError("lookup: no such host") }
            return [SRVRecord(priority: 0, weight: 0, port: 2380, target: "m1.kvd.test."),
                    SRVRecord(priority: 0, weight: 0, port: 2380, target: "m2.kvd.test."),
                    SRVRecord(priority: 0, weight: 0, port: 2380, target: "m3.kvd.test.")]
        }
        let cluster = try DNSDiscovery.initialCluster(
            domain: "kvd.test", serviceName: "east", memberName: "n2", advertisePeerURLs: ["https://m2.kvd.test:2380"],
            lookup: lookup, resolve: resolve)
        #expect(cluster == ["0=https://m1.kvd.test:2380", "n2=https://m2.kvd.test:2380", "1=https://m3.kvd.test:2380"])
        #expect(asked == ["_etcd-server-ssl-east._tcp.kvd.test", "_etcd-server-east._tcp.kvd.test"])
    }

    @Test func aMemberMissingFromTheRecordsOrOnAnotherSchemeIsRefused() {
        let records: DNSDiscovery.Lookup = { service, _ throws(DNSDiscoveryError) in
            service == "etcd-server-ssl" ? [SRVRecord(priority: 0, weight: 0, port: 2380, target: "m1.kvd.test.")] : []
        }
        #expect(throws: DNSDiscoveryError("cannot find local etcd member \"n2\" in SRV records")) {
            try DNSDiscovery.initialCluster(
                domain: "kvd.test", serviceName: "", memberName: "n2", advertisePeerURLs: ["https://m2.kvd.test:2380"],
                lookup: records, resolve: resolve)
        }
        #expect(throws: DNSDiscoveryError(
            "error querying DNS SRV records for _etcd-server-ssl bootstrap at https://m1.kvd.test:2380 from DNS for "
                + "etcd-server-ssl has scheme mismatch with expected peer http://m1.kvd.test:2380")) {
            try DNSDiscovery.initialCluster(
                domain: "kvd.test", serviceName: "", memberName: "n1", advertisePeerURLs: ["http://m1.kvd.test:2380"],
                lookup: records, resolve: resolve)
        }
        let nothing: DNSDiscovery.Lookup = { service, _ throws(DNSDiscoveryError) in throw DNSDiscoveryError("lookup _\(service): no such host") }
        #expect(throws: DNSDiscoveryError(
            "error querying DNS SRV records for _etcd-server-ssl lookup _etcd-server-ssl: no such host; "
                + "error querying DNS SRV records for _etcd-server lookup _etcd-server: no such host")) {
            try DNSDiscovery.initialCluster(
                domain: "kvd.test", serviceName: "", memberName: "n1", advertisePeerURLs: ["https://m1.kvd.test:2380"],
                lookup: nothing, resolve: resolve)
        }
    }

    @Test func clientEndpointsListHTTPSFirstAndFailOnlyWhenBothLookupsDo() throws {
        let lookup: DNSDiscovery.Lookup = { service, _ throws(DNSDiscoveryError) in
            switch service {
            case "etcd-client-ssl": [SRVRecord(priority: 0, weight: 0, port: 2379, target: "m1.kvd.test.")]
            case "etcd-client": [SRVRecord(priority: 0, weight: 0, port: 2389, target: "m2.kvd.test.")]
            default: throw DNSDiscoveryError("lookup _\(service): no such host")
            }
        }
        #expect(try DNSDiscovery.clientEndpoints(domain: "kvd.test", serviceName: "", lookup: lookup)
            == ["https://m1.kvd.test.:2379", "http://m2.kvd.test.:2389"])
        #expect(throws: DNSDiscoveryError(
            "dns lookup errors: lookup _etcd-client-ssl-west: no such host and lookup _etcd-client-west: no such host")) {
            try DNSDiscovery.clientEndpoints(domain: "kvd.test", serviceName: "west", lookup: lookup)
        }
    }

    @Test func aTCPAddressIsResolvedAsGoPicksIt() {
        #expect(DNSDiscovery.resolveTCPAddress(host: "127.0.0.1", port: 2380) == "127.0.0.1:2380")
        #expect(DNSDiscovery.resolveTCPAddress(host: "::1", port: 2380) == "[::1]:2380")
    }

    /// A member advertising its address is the member its record names by host name (etcd
    /// compares peer URLs resolved).
    @Test func urlsAreTheSameEndpointsOnceResolved() {
        #expect(DNSDiscovery.sameEndpoints(["https://m1.kvd.test:2380"], ["https://10.0.0.1:2380"], resolve: resolve))
        #expect(DNSDiscovery.sameEndpoints(
            ["https://m1.kvd.test:2380", "https://m2.kvd.test:2380"], ["https://10.0.0.2:2380", "https://10.0.0.1:2380"],
            resolve: resolve))
        #expect(!DNSDiscovery.sameEndpoints(["https://m1.kvd.test:2380"], ["https://10.0.0.1:2381"], resolve: resolve))
        #expect(!DNSDiscovery.sameEndpoints(["https://m1.kvd.test:2380"], ["http://10.0.0.1:2380"], resolve: resolve))
        #expect(!DNSDiscovery.sameEndpoints(["https://unknown.kvd.test:2380"], ["https://10.0.0.1:2380"], resolve: resolve))
        #expect(!DNSDiscovery.sameEndpoints(["https://m1.kvd.test:2380"], ["https://m1.kvd.test:2380", "https://m2.kvd.test:2380"], resolve: resolve))
        #expect(DNSDiscovery.sameEndpoints(["unix://u1.sock:1"], ["unix://u1.sock:1"]) )
    }
}
