package import GRPCCore
internal import MVCC

/// Failures the API reports to clients, each with the gRPC code and the exact message etcd uses
/// (etcd `api/v3rpc/rpctypes/error.go`): Go clients map errors back to types by the message.
package enum APIError: Error, Equatable, Sendable {
    case emptyKey
    case invalidSortOption
    case keyNotFound
    case valueProvided
    case leaseProvided
    case tooManyOps
    case duplicateKey
    case compacted
    case futureRevision
    case leaseNotFound
    case leaseExists
    case leaseTTLTooLarge
    case requestTooLarge
    case tooManyRequests
    case stopped
    case timeout
    case notSupportedForLearner
    case leaderTransferTimeout
    case leaderChanged
    case noLeader
    case memberNotFound
    case memberExists
    case peerURLExists
    case memberNotLearner
    case learnerNotReady
    case badLeaderTransferee
    case notLeader
    case memberBadURLs
    case tooManyLearners
    case notEnoughStartedMembers
    case unhealthy
    case noSpace
    case corrupt
    case auth(AuthError)
    case storage(String)
    /// A response larger than gRPC lets a server send (grpc-go's limit, math.MaxInt32 bytes).
    case responseTooLarge(bytes: Int)

    package var rpcError: RPCError {
        switch self {
        case .emptyKey: RPCError(code: .invalidArgument, message: "etcdserver: key is not provided")
        case .invalidSortOption: RPCError(code: .invalidArgument, message: "etcdserver: invalid sort option")
        case .keyNotFound: RPCError(code: .invalidArgument, message: "etcdserver: key not found")
        case .valueProvided: RPCError(code: .invalidArgument, message: "etcdserver: value is provided")
        case .leaseProvided: RPCError(code: .invalidArgument, message: "etcdserver: lease is provided")
        case .tooManyOps: RPCError(code: .invalidArgument, message: "etcdserver: too many operations in txn request")
        case .duplicateKey: RPCError(code: .invalidArgument, message: "etcdserver: duplicate key given in txn request")
        case .compacted: RPCError(code: .outOfRange, message: "etcdserver: mvcc: required revision has been compacted")
        case .futureRevision: RPCError(code: .outOfRange, message: "etcdserver: mvcc: required revision is a future revision")
        case .leaseNotFound: RPCError(code: .notFound, message: "etcdserver: requested lease not found")
        case .leaseExists: RPCError(code: .failedPrecondition, message: "etcdserver: lease already exists")
        case .leaseTTLTooLarge: RPCError(code: .outOfRange, message: "etcdserver: too large lease TTL")
        case .requestTooLarge: RPCError(code: .invalidArgument, message: "etcdserver: request is too large")
        case .tooManyRequests: RPCError(code: .resourceExhausted, message: "etcdserver: too many requests")
        case .stopped: RPCError(code: .unavailable, message: "etcdserver: server stopped")
        case .timeout: RPCError(code: .unavailable, message: "etcdserver: request timed out")
        case .leaderTransferTimeout:
            RPCError(code: .deadlineExceeded, message: "etcdserver: request timed out, leader transfer took too long")
        case .notSupportedForLearner: RPCError(code: .unavailable, message: "etcdserver: rpc not supported for learner")
        case .leaderChanged: RPCError(code: .unavailable, message: "etcdserver: leader changed")
        case .noLeader: RPCError(code: .unavailable, message: "etcdserver: no leader")
        case .memberNotFound: RPCError(code: .notFound, message: "etcdserver: member not found")
        case .memberExists: RPCError(code: .failedPrecondition, message: "etcdserver: member ID already exist")
        case .peerURLExists: RPCError(code: .failedPrecondition, message: "etcdserver: Peer URLs already exists")
        case .memberNotLearner: RPCError(code: .failedPrecondition, message: "etcdserver: can only promote a learner member")
        case .learnerNotReady:
            RPCError(code: .failedPrecondition, message: "etcdserver: can only promote a learner member which is in sync with leader")
        case .badLeaderTransferee: RPCError(code: .failedPrecondition, message: "etcdserver: bad leader transferee")
        case .notLeader: RPCError(code: .failedPrecondition, message: "etcdserver: not leader")
        case .memberBadURLs: RPCError(code: .invalidArgument, message: "etcdserver: given member URLs are invalid")
        case .tooManyLearners: RPCError(code: .failedPrecondition, message: "etcdserver: too many learner members in cluster")
        case .notEnoughStartedMembers:
            RPCError(code: .failedPrecondition, message: "etcdserver: re-configuration failed due to not enough started members")
        case .unhealthy: RPCError(code: .unavailable, message: "etcdserver: unhealthy cluster")
        case .noSpace: RPCError(code: .resourceExhausted, message: "etcdserver: mvcc: database space exceeded")
        case .corrupt: RPCError(code: .dataLoss, message: "etcdserver: corrupt cluster")
        case .auth(let error): error.rpcError
        case .storage(let message): RPCError(code: .internalError, message: "etcdserver: \(message)")
        case .responseTooLarge(let bytes):
            RPCError(code: .resourceExhausted, message: "grpc: trying to send message larger than max (\(bytes) vs. \(Int32.max))")
        }
    }

    init(_ error: MVCCError) {
        switch error {
        case .compacted: self = .compacted
        case .futureRevision: self = .futureRevision
        case .leaseNotFound: self = .leaseNotFound
        case .leaseExists: self = .leaseExists
        case .keyNotFound: self = .keyNotFound
        case .noSpace: self = .noSpace
        case .corrupt: self = .corrupt
        case .storage(let message): self = .storage(message)
        }
    }
}

extension AuthError {
    var rpcError: RPCError {
        switch self {
        case .userEmpty: RPCError(code: .invalidArgument, message: "etcdserver: user name is empty")
        case .userExists: RPCError(code: .failedPrecondition, message: "etcdserver: user name already exists")
        case .userNotFound: RPCError(code: .failedPrecondition, message: "etcdserver: user name not found")
        case .roleEmpty: RPCError(code: .invalidArgument, message: "etcdserver: role name is empty")
        case .roleExists: RPCError(code: .failedPrecondition, message: "etcdserver: role name already exists")
        case .roleNotFound: RPCError(code: .failedPrecondition, message: "etcdserver: role name not found")
        case .roleNotGranted: RPCError(code: .failedPrecondition, message: "etcdserver: role is not granted to the user")
        case .permissionNotGranted:
            RPCError(code: .failedPrecondition, message: "etcdserver: permission is not granted to the role")
        case .rootUserNotExist: RPCError(code: .failedPrecondition, message: "etcdserver: root user does not exist")
        case .rootRoleNotExist: RPCError(code: .failedPrecondition, message: "etcdserver: root user does not have root role")
        case .authNotEnabled: RPCError(code: .failedPrecondition, message: "etcdserver: authentication is not enabled")
        case .authFailed:
            RPCError(code: .invalidArgument, message: "etcdserver: authentication failed, invalid user ID or password")
        // etcd 3.4 has no gRPC status for it: grpc-go sends its own error as Unknown.
        case .noPasswordUser:
            RPCError(code: .unknown, message: "auth: authentication failed, password was given for no password user")
        case .permissionDenied: RPCError(code: .permissionDenied, message: "etcdserver: permission denied")
        case .invalidToken: RPCError(code: .unauthenticated, message: "etcdserver: invalid auth token")
        case .oldRevision: RPCError(code: .invalidArgument, message: "etcdserver: revision of auth store is old")
        case .invalidAuthManagement: RPCError(code: .invalidArgument, message: "etcdserver: invalid auth management")
        case .verifyOnly: RPCError(code: .unknown, message: "auth: token signing attempted with verify-only key")
        }
    }
}
