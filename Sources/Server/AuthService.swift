internal import EtcdAPI
internal import GRPCCore
internal import MVCC
internal import SwiftProtobuf
internal import Synchronization

/// etcd's Auth service: users, roles and `auth enable`/`disable` go through Raft (`AuthStore`,
/// applied with the root role's permission once auth is on); lookups read them at a
/// linearizable point, as etcd's go through Raft; `Authenticate` checks the password here and
/// has every member record the token through Raft, as etcd's simple tokens are.
struct AuthService: Etcdserverpb_Auth.SimpleServiceProtocol {
    let loop: NodeLoop
    let store: MVCCStore
    let header: @Sendable () -> HeaderFields
    let auth: Authenticator

    /// etcd fills auth responses' headers as its applier does: the current KV revision included.
    private func responseHeader() -> Etcdserverpb_ResponseHeader {
        var response = Etcdserverpb_ResponseHeader()
        header().fill(&response, currentRevision: store.currentRevision)
        return response
    }

    /// Proposes one change to the auth store, naming the caller, and answers once it is applied here.
    private func change<Response: AuthChangeResponse>(_ set: (inout Kvdpb_InternalRequest) -> Void) async throws -> Response {
        try await edge {
            _ = try await auth.proposeAsCaller(Kvdpb_InternalRequest.with(set), through: loop)
            var response = Response()
            response.header = responseHeader()
            return response
        }
    }

    /// The users and roles as of a linearizable point.
    private func read() async throws(APIError) -> AuthStore {
        try await loop.waitForReadIndex()
        return loop.facts.withLock { $0.auth }
    }

    func authEnable(request: Etcdserverpb_AuthEnableRequest, context: ServerContext) async throws -> Etcdserverpb_AuthEnableResponse {
        try await change { $0.authEnable = request }
    }

    func authDisable(request: Etcdserverpb_AuthDisableRequest, context: ServerContext) async throws -> Etcdserverpb_AuthDisableResponse {
        try await change { $0.authDisable = request }
    }

    func authStatus(request: Etcdserverpb_AuthStatusRequest, context: ServerContext) async throws -> Etcdserverpb_AuthStatusResponse {
        try await edge {
            let state = try await read()
            var response = Etcdserverpb_AuthStatusResponse()
            response.header = responseHeader()
            response.enabled = state.enabled
            response.authRevision = state.revision
            return response
        }
    }

    /// etcd's Authenticate: the password is checked here (hashing is slow, and the log should not
    /// carry passwords); the token's random prefix goes through Raft so that every member knows
    /// the token, which ends in the index of the entry that assigned it.
    func authenticate(request: Etcdserverpb_AuthenticateRequest, context: ServerContext) async throws -> Etcdserverpb_AuthenticateResponse {
        try await edge {
            let state = try await read()
            do throws(AuthError) {
                _ = try state.checkPassword(user: request.name, password: request.password)
            } catch {
                throw APIError.auth(error)
            }
            // A JWT is signed here once the entry is applied (at the auth revision it finds); a
            // simple token is recorded by every member.
            let prefix = auth.jwt == nil ? SimpleTokens.makePrefix() : ""
            _ = try await loop.propose(.with {
                $0.authenticate = .with {
                    $0.name = request.name
                    $0.simpleToken = prefix
                }
            })
            var response = Etcdserverpb_AuthenticateResponse()
            if let jwt = auth.jwt {
                do throws(AuthError) {
                    response.token = try jwt.sign(user: request.name, revision: loop.facts.withLock { $0.auth.revision })
                } catch {
                    throw APIError.auth(error)
                }
            } else {
                guard let token = loop.tokens.token(prefix: prefix) else { throw APIError.auth(.authFailed) }
                response.token = token
            }
            response.header = responseHeader()
            return response
        }
    }

    /// etcd: user and role lists need the root role; a user may read itself, and a role it has.
    /// A token is checked even while authentication is off (these are Raft requests in etcd,
    /// which refuses a token it does not know before it proposes one).
    private func checkAdmin(unlessCallerIs user: String? = nil, orHas role: String? = nil) async throws(APIError) {
        let caller = try await auth.caller()
        guard auth.isEnabled else { return }
        do {
            try auth.checkAdmin(caller)
        } catch {
            if let caller, let user, caller.user == user { return }
            if let caller, let role, loop.facts.withLock({ $0.auth.users[caller.user]?.roles.contains(role) ?? false }) { return }
            throw error
        }
    }

    func userAdd(request: Etcdserverpb_AuthUserAddRequest, context: ServerContext) async throws -> Etcdserverpb_AuthUserAddResponse {
        try await edge {
            var add = request
            add.password = add.options.noPassword ? "" : AuthStore.hashPassword(request.password)
            return try await change { $0.authUserAdd = add }
        }
    }

    func userGet(request: Etcdserverpb_AuthUserGetRequest, context: ServerContext) async throws -> Etcdserverpb_AuthUserGetResponse {
        try await edge {
            try await checkAdmin(unlessCallerIs: request.name)
            guard let user = try await read().users[request.name] else { throw APIError.auth(.userNotFound) }
            var response = Etcdserverpb_AuthUserGetResponse()
            response.header = responseHeader()
            response.roles = user.roles
            return response
        }
    }

    func userList(request: Etcdserverpb_AuthUserListRequest, context: ServerContext) async throws -> Etcdserverpb_AuthUserListResponse {
        try await edge {
            try await checkAdmin()
            var response = Etcdserverpb_AuthUserListResponse()
            response.users = try await read().userNames
            response.header = responseHeader()
            return response
        }
    }

    func userDelete(request: Etcdserverpb_AuthUserDeleteRequest, context: ServerContext) async throws -> Etcdserverpb_AuthUserDeleteResponse {
        try await change { $0.authUserDelete = request }
    }

    func userChangePassword(
        request: Etcdserverpb_AuthUserChangePasswordRequest, context: ServerContext
    ) async throws -> Etcdserverpb_AuthUserChangePasswordResponse {
        try await edge {
            var changed = request
            changed.password = AuthStore.hashPassword(request.password)
            return try await change { $0.authUserChangePassword = changed }
        }
    }

    func userGrantRole(request: Etcdserverpb_AuthUserGrantRoleRequest, context: ServerContext) async throws -> Etcdserverpb_AuthUserGrantRoleResponse {
        try await change { $0.authUserGrantRole = request }
    }

    func userRevokeRole(request: Etcdserverpb_AuthUserRevokeRoleRequest, context: ServerContext) async throws -> Etcdserverpb_AuthUserRevokeRoleResponse {
        try await change { $0.authUserRevokeRole = request }
    }

    func roleAdd(request: Etcdserverpb_AuthRoleAddRequest, context: ServerContext) async throws -> Etcdserverpb_AuthRoleAddResponse {
        try await change { $0.authRoleAdd = request }
    }

    func roleGet(request: Etcdserverpb_AuthRoleGetRequest, context: ServerContext) async throws -> Etcdserverpb_AuthRoleGetResponse {
        try await edge {
            try await checkAdmin(orHas: request.role)
            guard let role = try await read().roles[request.role] else { throw APIError.auth(.roleNotFound) }
            var response = Etcdserverpb_AuthRoleGetResponse()
            response.header = responseHeader()
            response.perm = role.keyPermission
            return response
        }
    }

    func roleList(request: Etcdserverpb_AuthRoleListRequest, context: ServerContext) async throws -> Etcdserverpb_AuthRoleListResponse {
        try await edge {
            try await checkAdmin()
            var response = Etcdserverpb_AuthRoleListResponse()
            response.roles = try await read().roleNames
            response.header = responseHeader()
            return response
        }
    }

    func roleDelete(request: Etcdserverpb_AuthRoleDeleteRequest, context: ServerContext) async throws -> Etcdserverpb_AuthRoleDeleteResponse {
        try await change { $0.authRoleDelete = request }
    }

    func roleGrantPermission(
        request: Etcdserverpb_AuthRoleGrantPermissionRequest, context: ServerContext
    ) async throws -> Etcdserverpb_AuthRoleGrantPermissionResponse {
        try await change { $0.authRoleGrantPermission = request }
    }

    func roleRevokePermission(
        request: Etcdserverpb_AuthRoleRevokePermissionRequest, context: ServerContext
    ) async throws -> Etcdserverpb_AuthRoleRevokePermissionResponse {
        try await change { $0.authRoleRevokePermission = request }
    }
}

/// The responses of auth store changes: a header and nothing else.
protocol AuthChangeResponse: SwiftProtobuf.Message {
    var header: Etcdserverpb_ResponseHeader { get set }
}

extension Etcdserverpb_AuthUserAddResponse: AuthChangeResponse {}
extension Etcdserverpb_AuthUserDeleteResponse: AuthChangeResponse {}
extension Etcdserverpb_AuthUserChangePasswordResponse: AuthChangeResponse {}
extension Etcdserverpb_AuthUserGrantRoleResponse: AuthChangeResponse {}
extension Etcdserverpb_AuthUserRevokeRoleResponse: AuthChangeResponse {}
extension Etcdserverpb_AuthRoleAddResponse: AuthChangeResponse {}
extension Etcdserverpb_AuthRoleDeleteResponse: AuthChangeResponse {}
extension Etcdserverpb_AuthRoleGrantPermissionResponse: AuthChangeResponse {}
extension Etcdserverpb_AuthRoleRevokePermissionResponse: AuthChangeResponse {}
extension Etcdserverpb_AuthEnableResponse: AuthChangeResponse {}
extension Etcdserverpb_AuthDisableResponse: AuthChangeResponse {}
