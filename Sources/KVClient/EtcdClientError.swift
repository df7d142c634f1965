// An error from an EtcdClient call: a gRPC status code and message, shaped like grpc-swift-2's `RPCError`
// (the code wraps a private enum, so codes can be added without breaking callers).

internal import GRPCCore

/// The failure of one client call: the server's gRPC status, or a local failure expressed as one.
public struct EtcdClientError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The gRPC status code.
    public var code: Code
    /// The status message as the server sent it (etcd's messages, e.g.
    /// "etcdserver: mvcc: required revision has been compacted"), or a local description.
    public var message: String
    /// True when the caller's deadline passed before any endpoint answered (Go's `context.DeadlineExceeded`).
    public var isDeadlineExceededLocally: Bool
    /// True when the last attempt before the deadline failed to reach any endpoint.
    public var noEndpointReachable: Bool
    /// The transport's account of the last failed connection attempt (with its cause, e.g. a refused connect), when
    /// `noEndpointReachable`; Go's grpc puts the equivalent into its DeadlineExceeded message.
    public var connectionFailure: String?

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
        self.isDeadlineExceededLocally = false
        self.noEndpointReachable = false
        self.connectionFailure = nil
    }

    public var description: String { "\(code): \"\(message)\"" }

    /// A gRPC status code.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        fileprivate enum Wrapped: Int, Sendable, Hashable {
            case cancelled = 1, unknown, invalidArgument, deadlineExceeded, notFound, alreadyExists,
                permissionDenied, resourceExhausted, failedPrecondition, aborted, outOfRange, unimplemented,
                internalError, unavailable, dataLoss, unauthenticated
        }

        fileprivate var wrapped: Wrapped

        fileprivate init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        /// The numeric gRPC status code (1...16).
        public var rawValue: Int { wrapped.rawValue }

        public static let cancelled = Self(.cancelled)
        public static let unknown = Self(.unknown)
        public static let invalidArgument = Self(.invalidArgument)
        public static let deadlineExceeded = Self(.deadlineExceeded)
        public static let notFound = Self(.notFound)
        public static let alreadyExists = Self(.alreadyExists)
        public static let permissionDenied = Self(.permissionDenied)
        public static let resourceExhausted = Self(.resourceExhausted)
        public static let failedPrecondition = Self(.failedPrecondition)
        public static let aborted = Self(.aborted)
        public static let outOfRange = Self(.outOfRange)
        public static let unimplemented = Self(.unimplemented)
        public static let internalError = Self(.internalError)
        public static let unavailable = Self(.unavailable)
        public static let dataLoss = Self(.dataLoss)
        public static let unauthenticated = Self(.unauthenticated)

        /// The name Go's grpc `codes.Code.String()` gives, which etcd's tools print.
        public var description: String {
            switch wrapped {
            case .cancelled: "Canceled"
            case .unknown: "Unknown"
            case .invalidArgument: "InvalidArgument"
            case .deadlineExceeded: "DeadlineExceeded"
            case .notFound: "NotFound"
            case .alreadyExists: "AlreadyExists"
            case .permissionDenied: "PermissionDenied"
            case .resourceExhausted: "ResourceExhausted"
            case .failedPrecondition: "FailedPrecondition"
            case .aborted: "Aborted"
            case .outOfRange: "OutOfRange"
            case .unimplemented: "Unimplemented"
            case .internalError: "Internal"
            case .unavailable: "Unavailable"
            case .dataLoss: "DataLoss"
            case .unauthenticated: "Unauthenticated"
            }
        }
    }
}

extension EtcdClientError {
    init(_ error: RPCError) {
        let code: Code = switch error.code {
        case .cancelled: .cancelled
        case .unknown: .unknown
        case .invalidArgument: .invalidArgument
        case .deadlineExceeded: .deadlineExceeded
        case .notFound: .notFound
        case .alreadyExists: .alreadyExists
        case .permissionDenied: .permissionDenied
        case .resourceExhausted: .resourceExhausted
        case .failedPrecondition: .failedPrecondition
        case .aborted: .aborted
        case .outOfRange: .outOfRange
        case .unimplemented: .unimplemented
        case .internalError: .internalError
        case .unavailable: .unavailable
        case .dataLoss: .dataLoss
        case .unauthenticated: .unauthenticated
        default: .unknown
        }
        self.init(code: code, message: error.message)
    }

    /// The caller's deadline passed (Go clients print "context deadline exceeded").
    static func deadlinePassed(noEndpointReachable: Bool, _ connectionFailure: String? = nil) -> Self {
        var error = Self(code: .deadlineExceeded, message: "context deadline exceeded")
        error.isDeadlineExceededLocally = true
        error.noEndpointReachable = noEndpointReachable
        error.connectionFailure = connectionFailure
        return error
    }
}
