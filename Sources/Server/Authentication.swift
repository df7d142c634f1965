internal import EtcdAPI
internal import MVCC
internal import Foundation
internal import Raft
internal import GRPCCore
internal import Synchronization

/// What a client presented with its request: a token in the gRPC metadata (etcd's "token", or
/// "authorization" from its gateway) and the connection it came on. The `AuthInterceptor` sets it
/// for the whole call, since the services' simple handlers do not see the metadata.
struct Credentials: Sendable {
    var token: String?
    var remotePeer: String

    @TaskLocal static var current: Credentials?
}

/// Puts each call's credentials where `Authenticator` finds them, for as long as the call runs
/// (its response stream included). With authentication off it does nothing.
struct AuthInterceptor: ServerInterceptor {
    let isEnabled: @Sendable () -> Bool

    /// The metadata that names the client connection of a call the lock and election services
    /// make on a client's behalf; believed only from the in-process transport.
    static let forwardedPeerKey = "kvd-forwarded-peer"

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let token = request.metadata[stringValues: "token"].first(where: { _ in true })
            ?? request.metadata[stringValues: "authorization"].first(where: { _ in true })
        // With authentication off only a token needs a look (it must be one this member knows).
        guard isEnabled() || token != nil else { return try await next(request, context) }
        var peer = context.remotePeer
        if peer.hasPrefix("in-process"), let forwarded = request.metadata[stringValues: Self.forwardedPeerKey].first(where: { _ in true }) {
            peer = forwarded
        }
        let credentials = Credentials(token: token, remotePeer: peer)
        var response = try await Credentials.$current.withValue(credentials) { try await next(request, context) }
        if case .success(var contents) = response.accepted {
            let producer = contents.producer
            contents.producer = { writer in
                try await Credentials.$current.withValue(credentials) { try await producer(writer) }
            }
            response = StreamingServerResponse(accepted: .success(contents))
        }
        return response
    }
}

/// Calls the member makes on a client's behalf (its lock and election services) carry that
/// client's credentials, as etcd's do (they run with the client's context).
struct ForwardCredentials: ClientInterceptor {
    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingClientRequest<Input>,
        context: ClientContext,
        next: (StreamingClientRequest<Input>, ClientContext) async throws -> StreamingClientResponse<Output>
    ) async throws -> StreamingClientResponse<Output> {
        guard let credentials = Credentials.current else { return try await next(request, context) }
        var request = request
        if let token = credentials.token { request.metadata.replaceOrAddString(token, forKey: "token") }
        request.metadata.replaceOrAddString(credentials.remotePeer, forKey: AuthInterceptor.forwardedPeerKey)
        return try await next(request, context)
    }
}

/// etcd's simple tokens (auth/simple_token.go): a random prefix chosen by the member that checked
/// the password, a dot and the index of the Raft entry that applied it, known to every member
/// that applied it. A token unused for the TTL (`--auth-token-ttl`) is forgotten; every use
/// restarts its clock. Tokens live in memory only, as in etcd: a restarted member knows those
/// its log replays.
final class SimpleTokens: Sendable {
    private struct Entry {
        var user: String
        var lastUsed: ContinuousClock.Instant
    }

    private let tokens = Mutex<[String: Entry]>([:])
    let ttl: Duration

    init(ttl: Duration) {
        self.ttl = ttl
    }

    /// etcd's genTokenPrefix: 16 letters.
    static func makePrefix() -> String {
        let letters = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
        var generator = SystemRandomNumberGenerator()
        return String((0..<16).map { _ in letters.randomElement(using: &generator)! })
    }

    func assign(prefix: String, index: UInt64, user: String, now: ContinuousClock.Instant = .now) {
        tokens.withLock { $0["\(prefix).\(index)"] = Entry(user: user, lastUsed: now) }
    }

    /// The token assigned with `prefix`, for the member that proposed it.
    func token(prefix: String) -> String? {
        let start = prefix + "."
        return tokens.withLock { $0.keys.first { $0.hasPrefix(start) } }
    }

    /// The token's user, restarting its clock; nil for an unknown or expired token.
    func user(of token: String, now: ContinuousClock.Instant = .now) -> String? {
        tokens.withLock { tokens -> String? in
            guard var entry = tokens[token] else { return nil }
            guard entry.lastUsed.duration(to: now) < ttl else {
                tokens[token] = nil
                return nil
            }
            entry.lastUsed = now
            tokens[token] = entry
            // Forget the expired ones now and then, as etcd's keeper does every second.
            if tokens.count > 1_024 { tokens = tokens.filter { $0.value.lastUsed.duration(to: now) < ttl } }
            return entry.user
        }
    }

    /// etcd invalidates a deleted user's tokens, and every token when auth is disabled.
    func invalidate(user: String) {
        tokens.withLock { $0 = $0.filter { $0.value.user != user } }
    }

    func removeAll() {
        tokens.withLock { $0.removeAll() }
    }

    /// The Raft index a simple token was assigned at, if it looks like one.
    static func index(of token: String) -> UInt64? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        return UInt64(parts[1])
    }
}

/// The common names of the verified client certificates, by connection, as gRPC names the
/// connection (`ServerContext.remotePeer`): with `--client-cert-auth`, etcd takes a request
/// without a token to come from the user its certificate names.
final class ClientIdentities: Sendable {
    private let names = Mutex<[String: String]>([:])

    func connected(_ peer: String, commonName: String) {
        names.withLock { $0[peer] = commonName }
    }

    func disconnected(_ peer: String) {
        names.withLock { $0[peer] = nil }
    }

    func commonName(of peer: String) -> String? {
        names.withLock { $0[peer] }
    }
}

/// Who a request comes from and what it may do, as etcd's server decides it at the API edge
/// (`AuthInfoFromCtx`, `doSerialize`, the maintenance and watch checks). Writes carry the caller
/// into the Raft entry and are checked where they are applied, against the auth store they
/// reach there.
struct Authenticator: Sendable {
    let loop: NodeLoop
    let tokens: SimpleTokens
    /// With `--auth-token jwt,...` tokens are JWTs, which any member with the key can check.
    let jwt: JWTTokens?
    let identities: ClientIdentities
    /// `--client-cert-auth`: a verified certificate's common name is a user name.
    let clientCertAuth: Bool

    var isEnabled: Bool { loop.authEnabled.load(ordering: .relaxed) }

    /// The caller of the current call; nil when authentication is off or nobody is named. A token
    /// is checked whether or not authentication is on, as etcd's `AuthInfoFromCtx` checks it: one
    /// this member does not know is refused ("etcdserver: invalid auth token") either way.
    func caller() async throws(APIError) -> AuthInfo? {
        guard let credentials = Credentials.current else { return nil }
        var named: AuthInfo?
        if let token = credentials.token { named = try await caller(of: token) }
        guard isEnabled else { return nil }
        if let named { return named }
        if clientCertAuth, let name = identities.commonName(of: credentials.remotePeer) {
            return AuthInfo(user: name, revision: currentRevision)
        }
        return nil
    }

    private func caller(of token: String) async throws(APIError) -> AuthInfo {
        if let jwt {
            guard let caller = jwt.caller(of: token) else { throw .auth(.invalidToken) }
            return caller
        }
        if let user = tokens.user(of: token) { return AuthInfo(user: user, revision: currentRevision) }
        // A token another member assigned may not be applied here yet: etcd waits for its
        // index before it calls the token invalid.
        if let index = SimpleTokens.index(of: token), index > loop.facts.withLock({ $0.appliedIndex.rawValue }) {
            try await loop.waitForReadIndex()
            if let user = tokens.user(of: token) { return AuthInfo(user: user, revision: currentRevision) }
        }
        throw .auth(.invalidToken)
    }

    private var currentRevision: UInt64 { loop.facts.withLock { $0.auth.revision } }

    /// A read of [key, rangeEnd), checked here (etcd checks reads at the edge).
    func checkRead(key: Data, rangeEnd: Data) async throws(APIError) {
        try await check { store, caller throws(AuthError) in try store.check(caller, key: key, rangeEnd: rangeEnd, .read) }
    }

    /// A txn served off the write path (read-only), checked as its apply would check it.
    func checkTxn(_ txn: Etcdserverpb_TxnRequest) async throws(APIError) {
        try await check { store, caller throws(AuthError) in try store.check(caller, txn: txn) }
    }

    /// Operations only the root role may run while authentication is on.
    func checkAdmin() async throws(APIError) {
        try checkAdmin(try await caller())
    }

    /// As `checkAdmin()`, for a caller `caller()` already named.
    func checkAdmin(_ caller: AuthInfo?) throws(APIError) {
        try check(caller) { store, caller throws(AuthError) in try store.checkAdmin(caller) }
    }

    /// Runs `rule` on the applied auth store and the caller, when authentication is on.
    private func check(_ rule: (AuthStore, AuthInfo?) throws(AuthError) -> Void) async throws(APIError) {
        try check(try await caller(), rule)
    }

    private func check(_ caller: AuthInfo?, _ rule: (AuthStore, AuthInfo?) throws(AuthError) -> Void) throws(APIError) {
        guard isEnabled else { return }
        do {
            try rule(loop.facts.withLock { $0.auth }, caller)
        } catch {
            throw .auth(error)
        }
    }

    /// Names the caller in a request to propose, for the check where it is applied.
    func stamp(_ request: inout Kvdpb_InternalRequest) async throws(APIError) {
        guard let caller = try await caller() else { return }
        request.authUser = caller.user
        request.authRevision = caller.revision
    }

    /// Proposes `request` in the caller's name. A request its apply refused because the auth store
    /// changed after the caller was named ("revision of auth store is old": a user or role added
    /// meanwhile; nothing was written) is named again and proposed again, as etcd 3.3 did (3.4 and
    /// 3.5 return the refusal, which clientv3 retries only for callers with a password). The caller
    /// gets the refusal when naming it again gives the same revision (a JWT carries the one it was
    /// issued at), when it has gone, or after `attemptsMax` tries under constant auth changes.
    func proposeAsCaller(_ request: Kvdpb_InternalRequest, through writes: any WriteProposer) async throws(APIError) -> WriteResult? {
        var refusedAt: UInt64?
        for _ in 0..<Self.attemptsMax {
            var named = request
            try await stamp(&named)
            if let refusedAt, named.authRevision == refusedAt || Task.isCancelled { break }
            do throws(APIError) {
                return try await writes.propose(named)
            } catch .auth(.oldRevision) {
                refusedAt = named.authRevision
            }
        }
        throw .auth(.oldRevision)
    }

    /// Proposals of one write at most, each refused for an auth store that moved on meanwhile.
    static let attemptsMax = 10
}
