// EtcdEndpoint parsing: the endpoint forms etcd clients accept (`host:port`, `http://`, `https://`, IPv6 in
// brackets), checked against a table.
import KVClient
import Testing

@Suite struct EtcdEndpointTests {
    @Test(arguments: [
        ("127.0.0.1:2379", "127.0.0.1", 2379, false),
        ("http://127.0.0.1:23791", "127.0.0.1", 23791, false),
        ("https://10.0.0.1:2379", "10.0.0.1", 2379, true),
        ("https://localhost:2379/", "localhost", 2379, true),
        ("[::1]:2379", "::1", 2379, false),
        ("https://[::1]:2380", "::1", 2380, true),
        ("localhost", "localhost", 2379, false),
    ])
    func parses(text: String, host: String, port: Int, isTLS: Bool) {
        let endpoint = EtcdEndpoint(parsing: text)
        #expect(endpoint == EtcdEndpoint(host: host, port: port, isTLS: isTLS))
    }

    @Test(arguments: ["", "http://", ":2379", "host:port", "host:70000", "[::1"])
    func rejects(text: String) {
        #expect(EtcdEndpoint(parsing: text) == nil)
    }

    @Test func errorCodesPrintAsGoNamesThem() {
        #expect(EtcdClientError.Code.outOfRange.description == "OutOfRange")
        #expect(EtcdClientError.Code.invalidArgument.description == "InvalidArgument")
        #expect(EtcdClientError.Code.internalError.description == "Internal")
        #expect(EtcdClientError.Code.cancelled.description == "Canceled")
    }
}
