internal import ArgumentParser
internal import Testing
@testable internal import KVDCommand
internal import Transport

/// Settings that must be refused with etcd's message instead of trapping or starting a member
/// that cannot work: each of these trapped at start-up (or later, dividing by a zero heartbeat)
/// before it was checked. Found while adding the settings' fuzz target (`make fuzz`).
@Suite struct MemberSettingsTests {
    static func configuration(flags: [String]) throws -> Void {
        let (arguments, _) = try EtcdFlags.normalise(flags)
        guard let command = try KVD.parseAsRoot(arguments) as? KVD else { Issue.record("not kvd's command"); return }
        _ = try MemberSettings(flags: command).memberConfiguration()
    }

    static func configuration(file text: String) throws -> Void {
        _ = try MemberSettings(configText: text, path: "test.yml").memberConfiguration()
    }

    @Test(arguments: ["snapshot-count: -1", "heartbeat-interval: 4611686018427387904", "election-timeout: -5"])
    func outOfRangeNumbersInAConfigFileAreRefused(_ text: String) {
        #expect(throws: ValidationError.self) { try Self.configuration(file: text) }
    }

    @Test(arguments: [
        ["--heartbeat-interval", "4611686018427387904"],
        ["--experimental-watch-progress-notify-interval", "1e300h"],
        ["--experimental-corrupt-check-time", "inf"],
        ["--grpc-keepalive-interval", "9223372036854775807h"],
        ["--auth-token", "jwt,ttl=1e30s"],
        ["--heartbeat-interval", "0"],
        ["--election-timeout", "60000", "--heartbeat-interval", "100"],
        ["--max-request-bytes=-1"],
        ["--max-txn-ops=-1"],
    ])
    func outOfRangeNumbersOnTheCommandLineAreRefused(_ flags: [String]) {
        #expect(throws: ValidationError.self) { try Self.configuration(flags: flags) }
    }

    @Test func aUnixsPeerURLNeedsAHostName() throws {
        let url = "unixs://127.0.0.1:1"
        #expect(throws: ValidationError.self) {
            try Self.configuration(flags: ["--listen-peer-urls", url, "--initial-advertise-peer-urls", url, "--initial-cluster", "default=\(url)"])
        }
        let named = "unixs://localhost:1"
        try Self.configuration(flags: [
            "--listen-peer-urls", named, "--initial-advertise-peer-urls", named, "--initial-cluster", "default=\(named)",
            "--peer-cert-file", "p.crt", "--peer-key-file", "p.key",
        ])
    }

    /// `--discovery-srv` bootstraps from DNS instead of `--initial-cluster` (etcd refuses both), on
    /// the command line or in a config file, where etcd's sample leaves `initial-cluster` empty.
    @Test func discoverySRVIsOneBootstrapAmongOthers() throws {
        do {
            try Self.configuration(flags: ["--discovery-srv", "kvd.test", "--initial-cluster", "default=http://localhost:2380"])
            Issue.record("--discovery-srv beside --initial-cluster was taken")
        } catch let error as ValidationError {
            #expect(error.message == "multiple discovery or bootstrap flags are set. Choose one of \"initial-cluster\", \"discovery\" or \"discovery-srv\"")
        }
        let (arguments, _) = try EtcdFlags.normalise(["--discovery-srv=kvd.test", "--discovery-srv-name", "east"])
        let command = try #require(try KVD.parseAsRoot(arguments) as? KVD)
        let settings = MemberSettings(flags: command)
        #expect(settings.discoverySRV == "kvd.test" && settings.discoverySRVName == "east")
        let file = try MemberSettings(configText: "initial-cluster:\ndiscovery-srv: kvd.test\ndiscovery-srv-name: east\n", path: "test.yml")
        #expect(file.discoverySRV == "kvd.test" && file.discoverySRVName == "east")
        _ = try file.memberConfiguration()
        #expect(throws: ValidationError.self) { try Self.configuration(flags: ["--discovery", "https://discovery.etcd.io/x"]) }
    }

    @Test func zeroDurationsInEveryUnitAreOff() {
        for text in ["0", "0s", "0ms", "0m", "0h", "0.0s"] { #expect(MemberSettings.isOff(text), "\(text)") }
        for text in ["1ms", "0.5s", "off", ""] { #expect(!MemberSettings.isOff(text), "\(text)") }
    }

    @Test func ordinarySettingsStillGiveAConfiguration() throws {
        try Self.configuration(flags: ["--heartbeat-interval", "50", "--election-timeout", "500", "--grpc-keepalive-interval=1.5h"])
        try Self.configuration(file: "snapshot-count: 5000\nexperimental-corrupt-check-time: 90s\n")
    }
}

/// `kvd gateway start --endpoints`: etcd's gateway takes host:port or a URL whose scheme it drops.
@Suite struct GatewayEndpointTests {
    @Test(arguments: [
        ("127.0.0.1:2379", "127.0.0.1", 2379), ("https://10.0.0.1:2379", "10.0.0.1", 2379),
        ("http://n1.example:12379/", "n1.example", 12379), ("[::1]:2379", "::1", 2379),
    ])
    func endpointsAreParsedAsEtcdsGatewayTakesThem(_ text: String, host: String, port: Int) throws {
        let endpoint = try GatewayStart.endpoint(text)
        #expect(endpoint.host == host && endpoint.port == port)
    }

    @Test(arguments: ["127.0.0.1", "n1:http", "n1:70000", ""])
    func badEndpointsAreRefused(_ text: String) {
        #expect(throws: ValidationError.self) { try GatewayStart.endpoint(text) }
    }
}
