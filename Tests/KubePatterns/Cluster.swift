// The client side of kube-apiserver's etcd connection: one mTLS gRPC connection per --etcd-servers
// endpoint, each request sent to the next endpoint in turn (clientv3's round-robin balancer), and
// moved on to the next one when a member is down or has no leader, as clientv3's retry interceptor does.

internal import EtcdAPI
internal import Foundation
internal import GRPCCore
internal import GRPCNIOTransportHTTP2Posix
internal import Synchronization

typealias Connection = GRPCClient<HTTP2ClientTransport.Posix>

/// `host:port` or `https://host:port`.
struct Endpoint: Sendable, CustomStringConvertible {
    var host: String
    var port: Int

    init?(_ text: String) {
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        if let scheme = rest.range(of: "://") { rest = rest[scheme.upperBound...] }
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]) else {
            return nil
        }
        host = String(rest[..<colon])
        self.port = port
    }

    var description: String { "\(host):\(port)" }
}

/// Paths of the client's TLS material (kubeadm's apiserver-etcd-client certificate and the etcd CA).
struct TLSFiles: Sendable {
    var caFile: String
    var certificateFile: String
    var keyFile: String
}

/// A call failed in a way that says nothing about whether the member applied it.
struct Unreachable: Error, CustomStringConvertible {
    var description: String
}

final class Cluster: Sendable {
    let endpoints: [Endpoint]
    /// One connection per endpoint, parallel to `endpoints`.
    let connections: [Connection]
    /// Round-robin position (clientv3's balancer picks the next ready endpoint per request).
    private let nextEndpoint = Atomic<Int>(0)
    /// How long one logical request keeps trying other endpoints before giving up.
    static let requestRetryMax: Duration = .seconds(20)
    /// One attempt's deadline (kube-apiserver bounds its etcd calls the same way).
    static let attemptTimeout: Duration = .seconds(5)

    init(endpoints: [Endpoint], tls: TLSFiles) throws {
        self.endpoints = endpoints
        connections = try endpoints.map { GRPCClient(transport: try Self.transport(for: $0, tls: tls)) }
    }

    /// Runs the connections for the duration of `body`.
    func run<Result: Sendable>(_ body: @Sendable () async throws -> Result) async throws -> Result {
        try await withThrowingTaskGroup(of: Void.self, returning: Result.self) { group in
            for connection in connections {
                group.addTask { try await connection.runConnections() }
            }
            defer {
                for connection in connections { connection.beginGracefulShutdown() }
                group.cancelAll()
            }
            return try await body()
        }
    }

    private static func transport(for endpoint: Endpoint, tls: TLSFiles) throws -> HTTP2ClientTransport.Posix {
        var config = HTTP2ClientTransport.Posix.Config.defaults
        config.connection.maxIdleTime = nil
        // A restarted member must be found again quickly (the default backoff grows to minutes).
        config.backoff.initial = .milliseconds(100)
        config.backoff.max = .milliseconds(500)
        let security = HTTP2ClientTransport.Posix.TransportSecurity.mTLS(
            certificateChain: [.file(path: tls.certificateFile, format: .pem)],
            privateKey: .file(path: tls.keyFile, format: .pem)
        ) { config in
            config.trustRoots = .certificates([.file(path: tls.caFile, format: .pem)])
        }
        return try HTTP2ClientTransport.Posix(
            target: .ipv4(address: endpoint.host, port: endpoint.port), transportSecurity: security, config: config)
    }

    static var callOptions: CallOptions {
        var options = CallOptions.defaults
        options.waitForReady = false
        options.timeout = attemptTimeout
        return options
    }

    /// Whether another member may succeed where this one failed: the member is down, has no
    /// leader, lost its leader mid-request or timed out (etcd answers all of these Unavailable).
    static func isRetryable(_ error: RPCError) -> Bool {
        switch error.code {
        case .unavailable, .deadlineExceeded, .resourceExhausted: true
        default: false
        }
    }

    /// One request on one endpoint (`index`), no retry: for checks that need a particular member.
    func on<Response: Sendable>(
        _ index: Int, _ rpc: @Sendable (Connection, CallOptions) async throws -> Response
    ) async throws -> Response {
        try await rpc(connections[index], Self.callOptions)
    }

    /// One logical request, round-robin over the endpoints. Returns the response and whether an
    /// earlier attempt failed after it may have reached a member (a write may then have applied:
    /// callers whose writes are guarded by a Txn compare can tell from the compare's outcome).
    func call<Response: Sendable>(
        _ rpc: @Sendable (Connection, CallOptions) async throws -> Response
    ) async throws -> (response: Response, retried: Bool) {
        let deadline = ContinuousClock.now + Self.requestRetryMax
        var retried = false
        var lastError: RPCError? = nil
        while ContinuousClock.now < deadline {
            let index = nextEndpoint.wrappingAdd(1, ordering: .relaxed).oldValue % connections.count
            do {
                return (try await rpc(connections[index], Self.callOptions), retried)
            } catch let error as RPCError where Self.isRetryable(error) {
                lastError = error
                retried = true
                // Every member failed in turn: give the cluster a moment (election, restart).
                if index == connections.count - 1 { try await Task.sleep(for: .milliseconds(100)) }
            }
        }
        throw Unreachable(
            description: "no member answered within \(Self.requestRetryMax): \(lastError.map { "\($0)" } ?? "-")")
    }

    // MARK: KV shorthands

    func range(_ request: Etcdserverpb_RangeRequest) async throws -> Etcdserverpb_RangeResponse {
        try await call { try await Etcdserverpb_KV.Client(wrapping: $0).range(request, options: $1) }.response
    }

    func txn(_ request: Etcdserverpb_TxnRequest) async throws -> (response: Etcdserverpb_TxnResponse, retried: Bool) {
        try await call { try await Etcdserverpb_KV.Client(wrapping: $0).txn(request, options: $1) }
    }

    func put(_ request: Etcdserverpb_PutRequest) async throws -> Etcdserverpb_PutResponse {
        try await call { try await Etcdserverpb_KV.Client(wrapping: $0).put(request, options: $1) }.response
    }
}
