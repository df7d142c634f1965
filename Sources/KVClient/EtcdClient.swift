// The public etcd v3 client: one gRPC connection per endpoint, calls fail over in endpoint order.
// Each service's calls live in their own extension file (EtcdClient+KV.swift, later watch, lease, ...).

internal import EtcdAPI
internal import GRPCCore
internal import GRPCNIOTransportHTTP2Posix
internal import Synchronization
internal import SwiftProtobuf

/// A client for an etcd v3 cluster (etcd or kvd). Create one with `withClient(configuration:_:)`, which runs its
/// connections for the duration of the closure.
public final class EtcdClient: Sendable {
    typealias Connection = GRPCClient<HTTP2ClientTransport.Posix>

    /// One gRPC client per endpoint, in the configured order.
    /// Invariant: not empty.
    let connections: [Connection]
    /// The endpoints, parallel to `connections`.
    public let endpoints: [EtcdEndpoint]
    /// Index of the endpoint that answered last; calls start there.
    private let preferred = Mutex(0)
    /// The auth token sent with every call once the client has authenticated.
    let token = AuthToken()

    /// Largest request sent; clientv3's default MaxCallSendMsgSize (2 MiB), above etcd's 1.5 MiB request limit.
    static let requestBytesMax = 2 * 1024 * 1024
    /// Largest response accepted; clientv3's default MaxCallRecvMsgSize (math.MaxInt32).
    static let responseBytesMax = Int(Int32.max)
    /// Longest pause between two rounds over all endpoints while none is reachable.
    static let retryBackoffMax: Duration = .milliseconds(500)

    private init(configuration: EtcdClientConfiguration) throws {
        guard !configuration.endpoints.isEmpty else {
            throw EtcdClientError(code: .invalidArgument, message: "no endpoints given")
        }
        self.endpoints = configuration.endpoints
        let token = self.token
        self.connections = try configuration.endpoints.map { endpoint in
            GRPCClient(transport: try Self.transport(for: endpoint, configuration: configuration), interceptors: [token])
        }
    }

    /// Runs `body` with a client connected to `configuration.endpoints`; connections close when it returns.
    public static func withClient<Result: Sendable>(
        configuration: EtcdClientConfiguration,
        _ body: @Sendable (EtcdClient) async throws -> Result
    ) async throws -> Result {
        let client = try EtcdClient(configuration: configuration)
        return try await withThrowingTaskGroup(of: Void.self, returning: Result.self) { group in
            for connection in client.connections {
                group.addTask { try await connection.runConnections() }
            }
            defer {
                for connection in client.connections { connection.beginGracefulShutdown() }
                // Outstanding connection attempts are of no further use once the body is done.
                group.cancelAll()
            }
            if let credentials = configuration.credentials {
                // As clientv3 does when it is created with a user: the first call gets the token.
                do {
                    let answer = try await client.authenticate(
                        .with {
                            $0.name = credentials.user
                            $0.password = credentials.password
                        }, timeout: configuration.dialTimeout + .seconds(5))
                    client.token.value.withLock { $0 = answer.token }
                } catch let error as EtcdClientError
                    where error.code == .failedPrecondition && error.message == "etcdserver: authentication is not enabled"
                {
                    configuration.authenticationNotEnabled?(error)
                } catch let error as EtcdClientError {
                    throw AuthenticationFailure(error: error)
                }
            }
            return try await body(client)
        }
    }

    private static func transport(
        for endpoint: EtcdEndpoint, configuration: EtcdClientConfiguration
    ) throws -> HTTP2ClientTransport.Posix {
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
        var config = HTTP2ClientTransport.Posix.Config.defaults
        config.connection.maxIdleTime = nil
        config.backoff.initial = .milliseconds(100)
        config.backoff.max = retryBackoffMax
        return try HTTP2ClientTransport.Posix(
            target: target,
            transportSecurity: security(for: endpoint, tls: configuration.tls),
            config: config
        )
    }

    /// etcd clients' rule: an `https://` endpoint or any TLS setting means TLS.
    private static func security(
        for endpoint: EtcdEndpoint, tls: EtcdClientConfiguration.TLS?
    ) -> HTTP2ClientTransport.Posix.TransportSecurity {
        guard endpoint.isTLS || tls != nil else { return .plaintext }
        let settings = tls ?? EtcdClientConfiguration.TLS()
        return .tls(
            HTTP2ClientTransport.Posix.TransportSecurity.TLS(
                certificateChain: settings.certificateFile.map { [.file(path: $0, format: .pem)] } ?? [],
                privateKey: settings.keyFile.map { .file(path: $0, format: .pem) },
                serverCertificateVerification: settings.skipServerVerification ? .noVerification : .fullVerification,
                trustRoots: settings.trustedCAFile.map { .certificates([.file(path: $0, format: .pem)]) }
                    ?? .systemDefault
            )
        )
    }

    /// Runs one unary call, starting at the preferred endpoint and moving to the next one when an endpoint cannot
    /// be reached, until `timeout` (nil: no limit) passes.
    ///
    /// NB: a connection that drops after a mutation was sent also reads as unavailable, so a retried Put may apply
    /// twice; etcd's Go client (3.4) takes the same risk for its balancer retries.
    func call<Response: Sendable>(
        timeout: Duration?,
        _ rpc: @Sendable (Connection, CallOptions) async throws -> Response
    ) async throws -> Response {
        let deadline = timeout.map { ContinuousClock.now + $0 }
        var backoff: Duration = .milliseconds(25)
        var first = preferred.withLock { $0 }
        var connectionFailure: String? = nil
        while true {
            for offset in connections.indices {
                let index = (first + offset) % connections.count
                var options = CallOptions.defaults
                options.waitForReady = false
                options.maxRequestMessageBytes = Self.requestBytesMax
                options.maxResponseMessageBytes = Self.responseBytesMax
                if let deadline {
                    let remaining = deadline - .now
                    guard remaining > .zero else {
                        throw EtcdClientError.deadlinePassed(noEndpointReachable: true, connectionFailure)
                    }
                    options.timeout = remaining
                }
                do {
                    let response = try await rpc(connections[index], options)
                    preferred.withLock { $0 = index }
                    return response
                } catch let error as RPCError {
                    if Self.isUnreachable(error) {
                        connectionFailure = String(describing: error)
                        continue
                    }
                    if error.code == .deadlineExceeded, let deadline, ContinuousClock.now >= deadline {
                        throw EtcdClientError.deadlinePassed(noEndpointReachable: false)
                    }
                    throw EtcdClientError(error)
                }
            }
            first = 0
            if let deadline {
                let remaining = deadline - .now
                guard remaining > .zero else {
                    throw EtcdClientError.deadlinePassed(noEndpointReachable: true, connectionFailure)
                }
                try await Task.sleep(for: min(backoff, remaining))
            } else {
                try await Task.sleep(for: backoff)
            }
            backoff = min(backoff * 2, Self.retryBackoffMax)
        }
    }

    /// Transport-level unavailability (no connection), as opposed to etcd's own Unavailable answers
    /// ("etcdserver: no leader", ...), which come from a reachable server and are returned to the caller.
    private static func isUnreachable(_ error: RPCError) -> Bool {
        error.code == .unavailable && !error.message.hasPrefix("etcdserver:")
    }
}

/// The client could not get a token for its user (a wrong password, auth not enabled, no endpoint).
public struct AuthenticationFailure: Error, Sendable {
    public let error: EtcdClientError
}

/// Sends the token, once there is one, as etcd's "token" metadata of every call.
final class AuthToken: ClientInterceptor, Sendable {
    let value = Mutex<String?>(nil)

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingClientRequest<Input>,
        context: ClientContext,
        next: (StreamingClientRequest<Input>, ClientContext) async throws -> StreamingClientResponse<Output>
    ) async throws -> StreamingClientResponse<Output> {
        var request = request
        if let token = value.withLock({ $0 }) { request.metadata.replaceOrAddString(token, forKey: "token") }
        return try await next(request, context)
    }
}
