package import GRPCCore
internal import MVCC

/// Failures the API reports to clients, each with the gRPC code and the exact message etcd uses
/// (etcd `api/v3rpc/rpctypes/error.go`): Go clients map errors back to types by the message.
package enum APIError: Error, Equatable, Sendable {
    case emptyKey
    case keyNotFound
    case valueProvided
    case leaseProvided
    case tooManyOps
    case duplicateKey
    case compacted
    case futureRevision
    case leaseNotFound
    case requestTooLarge
    case tooManyRequests
    case stopped
    case storage(String)

    package var rpcError: RPCError {
        switch self {
        case .emptyKey: RPCError(code: .invalidArgument, message: "etcdserver: key is not provided")
        case .keyNotFound: RPCError(code: .invalidArgument, message: "etcdserver: key not found")
        case .valueProvided: RPCError(code: .invalidArgument, message: "etcdserver: value is provided")
        case .leaseProvided: RPCError(code: .invalidArgument, message: "etcdserver: lease is provided")
        case .tooManyOps: RPCError(code: .invalidArgument, message: "etcdserver: too many operations in txn request")
        case .duplicateKey: RPCError(code: .invalidArgument, message: "etcdserver: duplicate key given in txn request")
        case .compacted: RPCError(code: .outOfRange, message: "etcdserver: mvcc: required revision has been compacted")
        case .futureRevision: RPCError(code: .outOfRange, message: "etcdserver: mvcc: required revision is a future revision")
        case .leaseNotFound: RPCError(code: .notFound, message: "etcdserver: requested lease not found")
        case .requestTooLarge: RPCError(code: .invalidArgument, message: "etcdserver: request is too large")
        case .tooManyRequests: RPCError(code: .resourceExhausted, message: "etcdserver: too many requests")
        case .stopped: RPCError(code: .unavailable, message: "etcdserver: server stopped")
        case .storage(let message): RPCError(code: .internalError, message: "etcdserver: \(message)")
        }
    }

    init(_ error: MVCCError) {
        switch error {
        case .compacted: self = .compacted
        case .futureRevision: self = .futureRevision
        case .leaseNotFound: self = .leaseNotFound
        case .keyNotFound: self = .keyNotFound
        case .storage(let message): self = .storage(message)
        }
    }
}
