// etcd's TLS flags read as etcd 3.5 reads them: Go's cipher suite names to OpenSSL's, versions,
// and the combinations etcd refuses.
internal import Testing
@testable internal import Transport

@Suite struct TLSPolicyTests {
    @Test func defaultsAreTLS12AndNewerWithTheLibrarysSuites() throws {
        let policy = try TLSPolicy.parse(minimum: "", maximum: "", cipherSuites: "")
        #expect(policy == TLSPolicy())
        #expect(policy.minimumVersion == .tls12 && policy.maximumVersion == nil && policy.cipherSuites.isEmpty)
    }

    @Test func goNamesBecomeOpenSSLNamesInOrder() throws {
        let policy = try TLSPolicy.parse(
            minimum: "TLS1.2", maximum: "TLS1.3",
            cipherSuites: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256")
        #expect(policy.cipherSuites == ["ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305"])
        #expect(policy.maximumVersion == .tls13)
    }

    @Test(arguments: [
        ("TLS1.1", "", "", TLSPolicy.ParseError.version("TLS1.1")),
        ("", "tls1.3", "", .version("tls1.3")),
        ("TLS1.3", "TLS1.2", "", .versionRange),
        ("", "", "TLS_RSA_WITH_RC4_128_SHA", .cipherSuite("TLS_RSA_WITH_RC4_128_SHA")),
        ("TLS1.3", "", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", .cipherSuitesWithOnlyTLS13),
    ])
    func refusals(minimum: String, maximum: String, suites: String, expected: TLSPolicy.ParseError) {
        #expect(throws: expected) { try TLSPolicy.parse(minimum: minimum, maximum: maximum, cipherSuites: suites) }
    }
}
