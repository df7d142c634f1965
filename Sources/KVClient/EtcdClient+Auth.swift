// Auth service calls: users, roles, and auth enable/disable (etcdctl's user, role and auth commands).

public import EtcdAPI
internal import GRPCCore
internal import GRPCNIOTransportHTTP2Posix

extension EtcdClient {
    public func authenticate(_ request: Etcdserverpb_AuthenticateRequest, timeout: Duration? = nil) async throws -> Etcdserverpb_AuthenticateResponse {
        try await call(timeout: timeout) { connection, options in
            try await Etcdserverpb_Auth.Client(wrapping: connection).authenticate(request, options: options)
        }
    }

    public func authEnable(_ request: Etcdserverpb_AuthEnableRequest, timeout: Duration? = nil) async throws -> Etcdserverpb_AuthEnableResponse {
        try await call(timeout: timeout) { connection, options in
            try await Etcdserverpb_Auth.Client(wrapping: connection).authEnable(request, options: options)
        }
    }

    public func authDisable(_ request: Etcdserverpb_AuthDisableRequest, timeout: Duration? = nil) async throws -> Etcdserverpb_AuthDisableResponse {
        try await call(timeout: timeout) { connection, options in
            try await Etcdserverpb_Auth.Client(wrapping: connection).authDisable(request, options: options)
        }
    }

    public func userAdd(_ request: Etcdserverpb_AuthUserAddRequest, timeout: Duration? = nil) async throws -> Etcdserverpb_AuthUserAddResponse {
        try await call(timeout: timeout) { connection, options in
            try await Etcdserverpb_Auth.Client(wrapping: connection).userAdd(request, options: options)
        }
    }

    public func userGet(_ request: Etcdserverpb_AuthUserGetRequest, timeout: Duration? = nil) async throws -> Etcdserverpb_AuthUserGetResponse {
        try await call(timeout: timeout) { connection, options in
            try await Etcdserverpb_Auth.Client(wrapping: connection).userGet(request, options: options)
        }
    }

    public func userList(_ request: Etcdserverpb_AuthUserListRequest, timeout: Duration? = nil) async throws -> Etcdserverpb_AuthUserListResponse {
        try await call(timeout: timeout) { connection, options in
            try await Etcdserverpb_Auth.Client(wrapping: connection).userList(request, options: options)
        }
    }

    public func userDelete(_ request: Etcdserverpb_AuthUserDeleteRequest, timeout: Duration? = nil) async throws -> Etcdserverpb_AuthUserDeleteResponse {
        try await call(timeout: timeout) { connection, options in
            try await Etcdserverpb_Auth.Client(wrapping: connection).userDelete(request, options: options)
        }
    }

    public func userChangePassword(_ request: Etcdserverpb_AuthUserChangePasswordRequest, timeout: Duration? = nil) async throws -> Etcdserverpb_AuthUserChangePasswordResponse {
        try await call(timeout: timeout) { connection, options in
            try await Etcdserverpb_Auth.Client(wrapping: connection).userChangePassword(request, options: options)
        }
    }

    public func userGrantRole(_ request: Etcdserverpb_AuthUserGrantRoleRequest, timeout: Duration? = nil) async throws -> Etcdserverpb_AuthUserGrantRoleResponse {
        try await call(timeout: timeout) { connection, options in
            try await Etcdserverpb_Auth.Client(wrapping: connection).userGrantRole(request, options: options)
        }
    }

    public func userRevokeRole(_ request: Etcdserverpb_AuthUserRevokeRoleRequest, timeout: Duration? = nil) async throws -> Etcdserverpb_AuthUserRevokeRoleResponse {
        try await call(timeout: timeout) { connection, options in
            try await Etcdserverpb_Auth.Client(wrapping: connection).userRevokeRole(request, options: options)
        }
    }

    public func roleAdd(_ request: Etcdserverpb_AuthRoleAddRequest, timeout: Duration? = nil) async throws -> Etcdserverpb_AuthRoleAddResponse {
        try await call(timeout: timeout) { connection, options in
            try await Etcdserverpb_Auth.Client(wrapping: connection).roleAdd(request, options: options)
        }
    }

    public func roleGet(_ request: Etcdserverpb_AuthRoleGetRequest, timeout: Duration? = nil) async throws -> Etcdserverpb_AuthRoleGetResponse {
        try await call(timeout: timeout) { connection, options in
            try await Etcdserverpb_Auth.Client(wrapping: connection).roleGet(request, options: options)
        }
    }

    public func roleList(_ request: Etcdserverpb_AuthRoleListRequest, timeout: Duration? = nil) async throws -> Etcdserverpb_AuthRoleListResponse {
        try await call(timeout: timeout) { connection, options in
            try await Etcdserverpb_Auth.Client(wrapping: connection).roleList(request, options: options)
        }
    }

    public func roleDelete(_ request: Etcdserverpb_AuthRoleDeleteRequest, timeout: Duration? = nil) async throws -> Etcdserverpb_AuthRoleDeleteResponse {
        try await call(timeout: timeout) { connection, options in
            try await Etcdserverpb_Auth.Client(wrapping: connection).roleDelete(request, options: options)
        }
    }

    public func roleGrantPermission(_ request: Etcdserverpb_AuthRoleGrantPermissionRequest, timeout: Duration? = nil) async throws -> Etcdserverpb_AuthRoleGrantPermissionResponse {
        try await call(timeout: timeout) { connection, options in
            try await Etcdserverpb_Auth.Client(wrapping: connection).roleGrantPermission(request, options: options)
        }
    }

    public func roleRevokePermission(_ request: Etcdserverpb_AuthRoleRevokePermissionRequest, timeout: Duration? = nil) async throws -> Etcdserverpb_AuthRoleRevokePermissionResponse {
        try await call(timeout: timeout) { connection, options in
            try await Etcdserverpb_Auth.Client(wrapping: connection).roleRevokePermission(request, options: options)
        }
    }
}
