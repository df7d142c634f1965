// What an EtcdClient needs to reach a cluster.

/// Endpoints, security and timeouts for an `EtcdClient`.
public struct EtcdClientConfiguration: Sendable {
    /// Endpoints in order of preference; on a connection failure the client tries the next one.
    public var endpoints: [EtcdEndpoint]
    /// TLS settings; when nil, only `https://` endpoints use TLS (with the system trust roots).
    public var tls: TLS?
    /// How long one connection attempt may take.
    public var dialTimeout: Duration
    /// A user and password: the client authenticates first and sends the token with every call.
    public var credentials: (user: String, password: String)?
    /// Told when the cluster has authentication off: the client then goes on without a token, as
    /// clientv3 does.
    public var authenticationNotEnabled: (@Sendable (EtcdClientError) -> Void)?

    public init(endpoints: [EtcdEndpoint], tls: TLS? = nil, dialTimeout: Duration = .seconds(2)) {
        self.endpoints = endpoints
        self.tls = tls
        self.dialTimeout = dialTimeout
    }

    /// Client-side TLS: trust roots and an optional client certificate for mutual TLS.
    public struct TLS: Sendable {
        /// PEM file of the CA bundle that signs the server certificate; nil means the system store.
        public var trustedCAFile: String?
        /// PEM file of the client certificate chain (mutual TLS).
        public var certificateFile: String?
        /// PEM file of the client certificate's private key.
        public var keyFile: String?
        /// Skip verification of the server certificate (testing only).
        public var skipServerVerification: Bool

        public init(
            trustedCAFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil,
            skipServerVerification: Bool = false
        ) {
            self.trustedCAFile = trustedCAFile
            self.certificateFile = certificateFile
            self.keyFile = keyFile
            self.skipServerVerification = skipServerVerification
        }
    }
}
