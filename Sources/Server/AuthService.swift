internal import EtcdAPI
internal import GRPCCore
internal import Synchronization

/// etcd's Auth service with authentication disabled, which is how kvd always runs (clients are
/// authenticated by their mTLS certificates). kvd keeps no users or roles, so every answer that
/// depends on them is the one etcd gives for a store without them: lists are empty, lookups are
/// "not found", and enabling auth fails for want of a root user. Creating users and roles is
/// refused as unsupported rather than accepted and forgotten.
struct AuthService: Etcdserverpb_Auth.SimpleServiceProtocol {
    let header: @Sendable () -> HeaderFields

    /// etcd's auth store starts at revision 1.
    static let authRevision: UInt64 = 1

    private static let rootUserNotExist = RPCError(code: .failedPrecondition, message: "etcdserver: root user does not exist")
    private static let notEnabled = RPCError(code: .failedPrecondition, message: "etcdserver: authentication is not enabled")
    private static let userNotFound = RPCError(code: .failedPrecondition, message: "etcdserver: user name not found")
    private static let roleNotFound = RPCError(code: .failedPrecondition, message: "etcdserver: role name not found")
    private static let unsupported = RPCError(
        code: .unimplemented, message: "kvd: users and roles are not supported; clients are authenticated by mTLS certificates")

    private func responseHeader() -> Etcdserverpb_ResponseHeader {
        let fields = header()
        var header = Etcdserverpb_ResponseHeader()
        header.clusterID = fields.clusterID.value
        header.memberID = fields.memberID.value
        header.raftTerm = fields.raftTerm
        return header
    }

    func authEnable(request: Etcdserverpb_AuthEnableRequest, context: ServerContext) async throws -> Etcdserverpb_AuthEnableResponse {
        throw Self.rootUserNotExist
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
        response.authRevision = Self.authRevision
        return response
    }

    func authenticate(request: Etcdserverpb_AuthenticateRequest, context: ServerContext) async throws -> Etcdserverpb_AuthenticateResponse {
        throw Self.notEnabled
    }

    func userAdd(request: Etcdserverpb_AuthUserAddRequest, context: ServerContext) async throws -> Etcdserverpb_AuthUserAddResponse {
        throw Self.unsupported
    }

    func userGet(request: Etcdserverpb_AuthUserGetRequest, context: ServerContext) async throws -> Etcdserverpb_AuthUserGetResponse {
        throw Self.userNotFound
    }

    func userList(request: Etcdserverpb_AuthUserListRequest, context: ServerContext) async throws -> Etcdserverpb_AuthUserListResponse {
        var response = Etcdserverpb_AuthUserListResponse()
        response.header = responseHeader()
        return response
    }

    func userDelete(request: Etcdserverpb_AuthUserDeleteRequest, context: ServerContext) async throws -> Etcdserverpb_AuthUserDeleteResponse {
        throw Self.userNotFound
    }

    func userChangePassword(
        request: Etcdserverpb_AuthUserChangePasswordRequest, context: ServerContext
    ) async throws -> Etcdserverpb_AuthUserChangePasswordResponse {
        throw Self.userNotFound
    }

    func userGrantRole(request: Etcdserverpb_AuthUserGrantRoleRequest, context: ServerContext) async throws -> Etcdserverpb_AuthUserGrantRoleResponse {
        throw Self.userNotFound
    }

    func userRevokeRole(request: Etcdserverpb_AuthUserRevokeRoleRequest, context: ServerContext) async throws -> Etcdserverpb_AuthUserRevokeRoleResponse {
        throw Self.userNotFound
    }

    func roleAdd(request: Etcdserverpb_AuthRoleAddRequest, context: ServerContext) async throws -> Etcdserverpb_AuthRoleAddResponse {
        throw Self.unsupported
    }

    func roleGet(request: Etcdserverpb_AuthRoleGetRequest, context: ServerContext) async throws -> Etcdserverpb_AuthRoleGetResponse {
        throw Self.roleNotFound
    }

    func roleList(request: Etcdserverpb_AuthRoleListRequest, context: ServerContext) async throws -> Etcdserverpb_AuthRoleListResponse {
        var response = Etcdserverpb_AuthRoleListResponse()
        response.header = responseHeader()
        return response
    }

    func roleDelete(request: Etcdserverpb_AuthRoleDeleteRequest, context: ServerContext) async throws -> Etcdserverpb_AuthRoleDeleteResponse {
        throw Self.roleNotFound
    }

    func roleGrantPermission(
        request: Etcdserverpb_AuthRoleGrantPermissionRequest, context: ServerContext
    ) async throws -> Etcdserverpb_AuthRoleGrantPermissionResponse {
        throw Self.roleNotFound
    }

    func roleRevokePermission(
        request: Etcdserverpb_AuthRoleRevokePermissionRequest, context: ServerContext
    ) async throws -> Etcdserverpb_AuthRoleRevokePermissionResponse {
        throw Self.roleNotFound
    }
}
