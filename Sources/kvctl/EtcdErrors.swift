// How etcdctl words a failed call: clientv3 turns a gRPC status whose message is one of etcd's known errors into
// that bare message (rpctypes.Error), and leaves any other status as Go grpc's "rpc error: code = X desc = Y".

import Foundation
import KVClient

enum EtcdErrors {
    /// The messages in etcd 3.4's `etcdserver/api/v3rpc/rpctypes/error.go` (errStringToError).
    static let knownMessages: Set<String> = [
        "etcdserver: key is not provided", "etcdserver: key not found", "etcdserver: value is provided",
        "etcdserver: lease is provided", "etcdserver: too many operations in txn request",
        "etcdserver: duplicate key given in txn request",
        "etcdserver: mvcc: required revision has been compacted",
        "etcdserver: mvcc: required revision is a future revision", "etcdserver: mvcc: database space exceeded",
        "etcdserver: requested lease not found", "etcdserver: lease already exists", "etcdserver: too large lease TTL",
        "etcdserver: watch canceled", "etcdserver: member ID already exist", "etcdserver: Peer URLs already exists",
        "etcdserver: re-configuration failed due to not enough started members",
        "etcdserver: given member URLs are invalid", "etcdserver: member not found",
        "etcdserver: can only promote a learner member",
        "etcdserver: can only promote a learner member which is in sync with leader",
        "etcdserver: too many learner members in cluster", "etcdserver: request is too large",
        "etcdserver: too many requests", "etcdserver: root user does not exist",
        "etcdserver: root user does not have root role", "etcdserver: user name already exists",
        "etcdserver: user name is empty", "etcdserver: user name not found", "etcdserver: role name already exists",
        "etcdserver: role name not found", "etcdserver: role name is empty",
        "etcdserver: authentication failed, invalid user ID or password", "etcdserver: permission denied",
        "etcdserver: role is not granted to the user", "etcdserver: permission is not granted to the role",
        "etcdserver: authentication is not enabled", "etcdserver: invalid auth token",
        "etcdserver: invalid auth management", "etcdserver: revision of auth store is old", "etcdserver: no leader",
        "etcdserver: not leader", "etcdserver: leader changed", "etcdserver: not capable", "etcdserver: server stopped",
        "etcdserver: request timed out", "etcdserver: request timed out, possibly due to previous leader failure",
        "etcdserver: request timed out, possibly due to connection lost",
        "etcdserver: request timed out, waiting for the applied index took too long",
        "etcdserver: unhealthy cluster", "etcdserver: corrupt cluster", "etcdserver: rpc not supported for learner",
        "etcdserver: bad leader transferee",
    ]

    /// The text after "Error: " (clientv3's toErr).
    static func message(for error: EtcdClientError) -> String {
        if error.isDeadlineExceededLocally { return "context deadline exceeded" }
        if knownMessages.contains(error.message) { return error.message }
        return grpcText(error)
    }

    /// Go grpc's status error text, as the retry interceptor logs it.
    static func grpcText(_ error: EtcdClientError) -> String {
        if error.isDeadlineExceededLocally {
            let desc =
                error.noEndpointReachable
                ? "latest balancer error: all SubConns are in TransientFailure" : "context deadline exceeded"
            return "rpc error: code = DeadlineExceeded desc = \(desc)"
        }
        return "rpc error: code = \(error.code) desc = \(error.message)"
    }

    /// The zap warning clientv3's retry interceptor writes to stderr for every failed call attempt
    /// (clientv3/retry_interceptor.go:62). The timestamp and the client UUID differ from run to run, as in etcdctl.
    static func retryWarning(_ error: EtcdClientError, firstEndpoint: String) -> String {
        let target = "endpoint://client-\(UUID().uuidString.lowercased())/\(firstEndpoint)"
        return warning(target: target, error: grpcText(error))
    }

    /// The same warning for a Maintenance call (Status, HashKV) that clientv3 makes over its own connection to one
    /// endpoint: the target is `passthrough:///<endpoint>`, and the connection's failure is in the message.
    static func endpointRetryWarning(_ error: EtcdClientError, endpoint: String) -> String {
        var text = grpcText(error)
        if error.isDeadlineExceededLocally, error.noEndpointReachable, let reason = dialFailure(error),
            let address = EtcdEndpoint(parsing: endpoint)
        {
            let dial = "transport: Error while dialing dial tcp \(address): \(reason)"
            text = "rpc error: code = DeadlineExceeded desc = latest balancer error: connection error: desc = "
                + "\"\(dial)\""
        }
        return warning(target: "passthrough:///\(endpoint)", error: text)
    }

    /// Go's net package wording of why the last connection attempt failed, when the transport's account says.
    static func dialFailure(_ error: EtcdClientError) -> String? {
        guard let failure = error.connectionFailure?.lowercased() else { return nil }
        if failure.contains("connection refused") || failure.contains("econnrefused") {
            return "connect: connection refused"
        }
        return nil
    }

    private static func warning(target: String, error: String) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'"
        return "{\"level\":\"warn\",\"ts\":\"\(formatter.string(from: Date()))\","
            + "\"caller\":\"clientv3/retry_interceptor.go:62\",\"msg\":\"retrying of unary invoker failed\","
            + "\"target\":\(goJSONString(target)),\"attempt\":0,\"error\":\(goJSONString(error))}\n"
    }

    /// A string as Go's encoding/json writes it (HTML-safe: <, >, & escaped).
    static func goJSONString(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case "<", ">", "&", "\u{2028}", "\u{2029}": result += "\\u" + GoFormat.hexPadded(scalar.value, width: 4)
            default:
                if scalar.value < 0x20 {
                    result += "\\u" + GoFormat.hexPadded(scalar.value, width: 4)
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
    }
}
