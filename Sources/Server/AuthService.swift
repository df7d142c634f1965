internal import EtcdAPI
internal import GRPCCore
internal import MVCC
internal import SwiftProtobuf
internal import Synchronization

/// etcd's Auth service with authentication disabled, which is how kvd always runs (clients are
/// authenticated by their mTLS certificates). Users and roles are kept as etcd keeps them with
/// auth disabled: changes go through Raft (`AuthStore`), lookups read them at a linearizable
/// point, as etcd's go through Raft. Enabling auth fails: for want of a root user with the root
/// role, as in etcd, and otherwise because kvd does not authenticate by password.
struct AuthService: Etcdserverpb_Auth.SimpleServiceProtocol {
    let loop: NodeLoop
    let store: MVCCStore
    let header: @Sendable () -> HeaderFields

    /// etcd fills auth responses' headers as its applier does: the current KV revision included.
    private func responseHeader() -> Etcdserverpb_ResponseHeader {
        var response = Etcdserverpb_ResponseHeader()
        header().fill(&response, currentRevision: store.currentRevision)
        return response
    }

    /// Proposes one change to the users and roles and answers once it is applied here.
    private func change<Response: AuthChangeResponse>(_ set: (inout Kvdpb_InternalRequest) -> Void) async throws -> Response {
        try await edge {
            _ = try await loop.propose(.with(set))
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
        try await edge {
            throw APIError.auth(try await read().checkRootForEnable())
        }
    }

    func authDisable(request: Etcdserverpb_AuthDisableRequest, context: ServerContext) async throws -> Etcdserverpb_AuthDisableResponse {
        var response = Etcdserverpb_AuthDisableResponse()
        response.header = responseHeader()
        return response
    }

    func authStatus(request: Etcdserverpb_AuthStatusRequest, context: ServerContext) async throws -> Etcdserverpb_AuthStatusResponse {
        var response = Etcdserverpb_AuthStatusResponse()
        response.header = responseHeader()
        response.enabled = false
        response.authRevision = loop.facts.withLock { $0.auth.revision }
        return response
    }

    func authenticate(request: Etcdserverpb_AuthenticateRequest, context: ServerContext) async throws -> Etcdserverpb_AuthenticateResponse {
        try edge { throw APIError.authNotEnabled }
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
            guard let user = try await read().users[request.name] else { throw APIError.auth(.userNotFound) }
            var response = Etcdserverpb_AuthUserGetResponse()
            response.header = responseHeader()
            response.roles = user.roles
            return response
        }
    }

    func userList(request: Etcdserverpb_AuthUserListRequest, context: ServerContext) async throws -> Etcdserverpb_AuthUserListResponse {
        try await edge {
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
            guard let role = try await read().roles[request.role] else { throw APIError.auth(.roleNotFound) }
            var response = Etcdserverpb_AuthRoleGetResponse()
            response.header = responseHeader()
            response.perm = role.keyPermission
            return response
        }
    }

    func roleList(request: Etcdserverpb_AuthRoleListRequest, context: ServerContext) async throws -> Etcdserverpb_AuthRoleListResponse {
        try await edge {
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
