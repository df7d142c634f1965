internal import GRPCCore
internal import GRPCNIOTransportHTTP2Posix
internal import Logging
internal import Synchronization
internal import X509

/// Logs who each client connection is, by the subject CN of its mTLS certificate, once per
/// connection (the first RPC on it): the audit trail etcd operators get from client cert auth.
final class ClientIdentityLog: ServerInterceptor {
    private let logger: Logger
    /// Remote addresses already logged; cleared when large (a reconnecting client is logged again).
    private let seen = Mutex<Set<String>>([])

    init(logger: Logger) {
        self.logger = logger
    }

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        if let posix = context.transportSpecific as? HTTP2ServerTransport.Posix.Context, let certificate = posix.peerCertificate {
            let peer = context.remotePeer
            let isNew = seen.withLock { seen in
                if seen.count >= 10_000 { seen.removeAll() }
                return seen.insert(peer).inserted
            }
            if isNew {
                logger.info("client connected", metadata: ["peer": "\(peer)", "cn": "\(Self.commonName(certificate) ?? "")"])
            }
        }
        return try await next(request, context)
    }

    static func commonName(_ certificate: Certificate) -> String? {
        for rdn in certificate.subject {
            for attribute in rdn where attribute.type == .RDNAttributeType.commonName {
                return String(describing: attribute.value)
            }
        }
        return nil
    }
}
