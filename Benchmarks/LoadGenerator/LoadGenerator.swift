// A load generator for whole clusters with the shapes of etcd 3.4's own `tools/benchmark`, so that kvd and etcd can
// be measured the same way:
//
//   LoadGenerator put   --endpoints 127.0.0.1:2379,... --cacert ca.crt --cert client.crt --key client.key \
//                       --conns 10 --clients 100 --total 100000 --key-size 8 --val-size 256 \
//                       [--sequential-keys] [--key-space-size 100000]
//   LoadGenerator range KEY [END] --consistency l|s --conns 10 --clients 100 --total 100000
//
// What mirrors etcd's tool, so that the figures are comparable:
// - `--conns` gRPC connections (one HTTP/2 connection each), dialled round-robin over `--endpoints`;
//   `--clients` concurrent clients, client i using connection i % conns; each client runs one request at a time.
// - Keys: `--key-size` bytes holding the Go `binary.PutVarint` (zig-zag varint) of the request number modulo
//   `--key-space-size` (sequential) or of a uniform random number below it; one random value of `--val-size` bytes.
//   `--key-space-size` defaults to 1, as etcd's does (every put then hits one key).
// - Latency is measured per request from send to response; failed requests are counted, not timed.
//   QPS = successful requests / wall time of the whole run; percentiles use etcd's `pkg/report` rule.
// - The summary is printed in etcd's `pkg/report` format (Summary, histogram, latency distribution, errors).
//
// Cost sketch (per request, client side): one protobuf encode of ~270 bytes, one HTTP/2 stream on a shared
// connection, TLS record encryption; two clock reads and one array append for the latency sample. The client runs on
// the same 2 cores as the servers it measures, as etcd's tool does in the same run.

internal import ArgumentParser
internal import EtcdAPI
internal import Foundation
internal import GRPCCore
internal import GRPCNIOTransportHTTP2Posix
internal import Synchronization

@main
struct LoadGenerator: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "LoadGenerator",
        abstract: "A low-level load generator for etcd v3 clusters (etcd's tools/benchmark shapes).",
        subcommands: [Put.self, RangeCommand.self]
    )
}

/// Flags shared by every subcommand; the names are those of etcd's `tools/benchmark`.
struct GlobalOptions: ParsableArguments {
    @Option(help: "gRPC endpoints, comma-separated (host:port or https://host:port).")
    var endpoints: String = "127.0.0.1:2379"

    @Option(help: "Total number of gRPC connections.")
    var conns: Int = 1

    @Option(help: "Total number of gRPC clients.")
    var clients: Int = 1

    @Option(help: "Verify certificates of TLS servers using this CA bundle.")
    var cacert: String?

    @Option(help: "Identify the client using this TLS certificate file.")
    var cert: String?

    @Option(help: "Identify the client using this TLS key file.")
    var key: String?

    @Flag(help: "Print latencies with full floating point precision.")
    var precise = false

    func validate() throws {
        guard conns > 0 else { throw ValidationError("--conns must be positive") }
        guard clients > 0 else { throw ValidationError("--clients must be positive") }
        guard (cert == nil) == (key == nil) else { throw ValidationError("--cert and --key go together") }
    }
}

struct Put: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "put", abstract: "Benchmark put.")

    @OptionGroup var global: GlobalOptions

    @Option(help: "Key size of put request.")
    var keySize: Int = 8

    @Option(help: "Value size of put request.")
    var valSize: Int = 8

    @Option(help: "Total number of put requests.")
    var total: Int = 10000

    @Option(help: "Maximum possible keys.")
    var keySpaceSize: Int = 1

    @Flag(help: "Use sequential keys.")
    var sequentialKeys = false

    func validate() throws {
        guard keySpaceSize > 0 else { throw ValidationError("expected positive --key-space-size, got (\(keySpaceSize))") }
        guard keySize >= 10 || keySpaceSize <= Self.largestKey(bytes: keySize) else {
            throw ValidationError("--key-size \(keySize) cannot hold \(keySpaceSize) distinct keys")
        }
        guard total >= 0, valSize >= 0 else { throw ValidationError("--total and --val-size must not be negative") }
    }

    /// The largest key number whose zig-zag varint fits in `bytes` bytes (7 bits per byte, one bit for the sign).
    static func largestKey(bytes: Int) -> Int { bytes >= 9 ? Int.max : (1 << (7 * bytes - 1)) }

    func run() async throws {
        var value = [UInt8](repeating: 0, count: valSize)
        var system = SystemRandomNumberGenerator()
        for index in value.indices { value[index] = UInt8.random(in: .min ... .max, using: &system) }
        let valueData = Data(value)
        let keySize = keySize, keySpaceSize = keySpaceSize, sequential = sequentialKeys
        let summary = try await Workload.run(global: global, total: total) { requestNumber, random in
            let keyNumber = sequential ? requestNumber % keySpaceSize : Int(random.next() % UInt64(keySpaceSize))
            var request = Etcdserverpb_PutRequest()
            request.key = Workload.varintKey(keyNumber, size: keySize)
            request.value = valueData
            return .put(request)
        }
        print(summary.render(precise: global.precise))
    }
}

struct RangeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "range", abstract: "Benchmark range.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The key to read.")
    var key: String

    @Argument(help: "The end of the range (exclusive), if any.")
    var end: String?

    @Option(help: "Total number of range requests.")
    var total: Int = 10000

    @Option(help: "Linearizable(l) or Serializable(s).")
    var consistency: String = "l"

    func validate() throws {
        guard consistency == "l" || consistency == "s" else { throw ValidationError("--consistency must be l or s") }
        guard total >= 0 else { throw ValidationError("--total must not be negative") }
    }

    func run() async throws {
        print(consistency == "l" ? "bench with linearizable range" : "bench with serializable range")
        var request = Etcdserverpb_RangeRequest()
        request.key = Data(key.utf8)
        if let end { request.rangeEnd = Data(end.utf8) }
        request.serializable = consistency == "s"
        let fixed = request
        let summary = try await Workload.run(global: global, total: total) { _, _ in .range(fixed) }
        print(summary.render(precise: global.precise), terminator: "")
    }
}

/// One request of a run.
enum Operation: Sendable {
    case put(Etcdserverpb_PutRequest)
    case range(Etcdserverpb_RangeRequest)
}

/// SplitMix64: a fast per-client generator for random keys (the system generator costs a syscall per number).
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The next request number, shared by all clients.
final class Counter: Sendable {
    let value = Atomic<Int>(0)
}

enum Workload {
    typealias Connection = GRPCClient<HTTP2ClientTransport.Posix>

    /// What one client task brings back: its latencies (seconds) and its errors by message.
    struct ClientResult: Sendable {
        var latencies: [Double] = []
        var errors: [String: Int] = [:]
    }

    /// Runs `total` requests made by `makeRequest(requestNumber, generator)` over `global.clients` concurrent clients
    /// sharing `global.conns` connections, and summarises them.
    static func run(
        global: GlobalOptions,
        total: Int,
        makeRequest: @escaping @Sendable (Int, inout SplitMix64) -> Operation
    ) async throws -> Summary {
        let endpoints = try global.endpoints.split(separator: ",").map { try Endpoint(String($0)) }
        guard !endpoints.isEmpty else { throw ValidationError("no --endpoints given") }
        let connections = try (0..<global.conns).map { index in
            GRPCClient(transport: try transport(for: endpoints[index % endpoints.count], global: global))
        }
        let kvClients = connections.map { Etcdserverpb_KV.Client(wrapping: $0) }
        let next = Counter()
        let clients = global.clients

        return await withThrowingTaskGroup(of: Void.self, returning: Summary.self) { group in
            for connection in connections {
                group.addTask { try await connection.runConnections() }
            }
            defer {
                for connection in connections { connection.beginGracefulShutdown() }
                group.cancelAll()
            }
            let clock = ContinuousClock()
            let start = clock.now
            let results = await withTaskGroup(of: ClientResult.self, returning: [ClientResult].self) { workers in
                for clientIndex in 0..<clients {
                    let kv = kvClients[clientIndex % kvClients.count]
                    workers.addTask {
                        var random = SplitMix64(seed: UInt64.random(in: .min ... .max))
                        var result = ClientResult()
                        result.latencies.reserveCapacity(total / clients + 1)
                        while true {
                            let number = next.value.wrappingAdd(1, ordering: .relaxed).oldValue
                            guard number < total else { break }
                            let operation = makeRequest(number, &random)
                            let sent = clock.now
                            do {
                                switch operation {
                                case .put(let request): _ = try await kv.put(request)
                                case .range(let request): _ = try await kv.range(request)
                                }
                                result.latencies.append((clock.now - sent).seconds)
                            } catch let error as RPCError {
                                result.errors["rpc error: code = \(error.code) desc = \(error.message)", default: 0] += 1
                            } catch {
                                result.errors["\(error)", default: 0] += 1
                            }
                        }
                        return result
                    }
                }
                var all: [ClientResult] = []
                for await result in workers { all.append(result) }
                return all
            }
            let elapsed = (clock.now - start).seconds
            var latencies: [Double] = []
            latencies.reserveCapacity(total)
            var errors: [String: Int] = [:]
            for result in results {
                latencies.append(contentsOf: result.latencies)
                errors.merge(result.errors, uniquingKeysWith: +)
            }
            return Summary(latencies: latencies, errors: errors, total: elapsed)
        }
    }

    /// `size` bytes holding Go's `binary.PutVarint(key, number)`, zero-padded, as etcd's tool builds its keys.
    static func varintKey(_ number: Int, size: Int) -> Data {
        var bytes = [UInt8](repeating: 0, count: size)
        var zigzag = UInt64(bitPattern: Int64(number)) << 1
        if number < 0 { zigzag = ~zigzag }
        var index = 0
        while zigzag >= 0x80, index < size {
            bytes[index] = UInt8(truncatingIfNeeded: zigzag) | 0x80
            zigzag >>= 7
            index += 1
        }
        if index < size { bytes[index] = UInt8(truncatingIfNeeded: zigzag) }
        return Data(bytes)
    }

    private static func transport(for endpoint: Endpoint, global: GlobalOptions) throws -> HTTP2ClientTransport.Posix {
        var config = HTTP2ClientTransport.Posix.Config.defaults
        config.connection.maxIdleTime = nil
        let security: HTTP2ClientTransport.Posix.TransportSecurity
        if endpoint.isTLS || global.cacert != nil || global.cert != nil {
            security = .tls(
                HTTP2ClientTransport.Posix.TransportSecurity.TLS(
                    certificateChain: global.cert.map { [.file(path: $0, format: .pem)] } ?? [],
                    privateKey: global.key.map { .file(path: $0, format: .pem) },
                    serverCertificateVerification: .fullVerification,
                    trustRoots: global.cacert.map { .certificates([.file(path: $0, format: .pem)]) } ?? .systemDefault
                )
            )
        } else {
            security = .plaintext
        }
        let target: any ResolvableTarget =
            if endpoint.host.contains(":") {
                .ipv6(address: endpoint.host, port: endpoint.port)
            } else if endpoint.host.split(separator: ".").count == 4,
                endpoint.host.allSatisfy({ $0.isNumber || $0 == "." })
            {
                .ipv4(address: endpoint.host, port: endpoint.port)
            } else {
                .dns(host: endpoint.host, port: endpoint.port)
            }
        return try HTTP2ClientTransport.Posix(target: target, transportSecurity: security, config: config)
    }
}

/// `host:port`, `http://host:port` or `https://host:port` (IPv6 hosts in brackets).
struct Endpoint: Sendable {
    var host: String
    var port: Int
    var isTLS: Bool

    init(_ text: String) throws {
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        isTLS = rest.hasPrefix("https://")
        if let scheme = rest.range(of: "://") { rest = rest[scheme.upperBound...] }
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]) else {
            throw ValidationError("endpoint \(text) is not host:port")
        }
        var host = rest[..<colon]
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        self.host = String(host)
        self.port = port
    }
}

extension Duration {
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) * 1e-18
    }
}
