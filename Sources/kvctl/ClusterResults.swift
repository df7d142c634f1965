// What the endpoint commands collect per endpoint (etcdctl's epHealth, epStatus and epHashKV), and the header and
// rows etcdctl derives from those and from member lists, shared by the simple and table printers (printer.go's
// make*Table functions).

import EtcdAPI

/// One endpoint's answer to `endpoint health`.
struct EndpointHealth: Sendable, Equatable {
    /// The endpoint as given (or as listed in the member list with `--cluster`).
    var endpoint: String
    /// True when the linearizable read succeeded (or was refused for lack of permission).
    var isHealthy: Bool
    /// Go's Duration text of the read's round trip; empty when no read was made.
    var took: String
    /// The read's error text; empty when healthy.
    var error: String
}

/// One endpoint's answer to `endpoint status`.
struct EndpointStatus: Sendable {
    /// The endpoint asked.
    var endpoint: String
    /// Its Maintenance/Status response.
    var response: Etcdserverpb_StatusResponse
}

/// One endpoint's answer to `endpoint hashkv`.
struct EndpointHashKV: Sendable {
    /// The endpoint asked.
    var endpoint: String
    /// Its Maintenance/HashKV response.
    var response: Etcdserverpb_HashKVResponse
}

enum ClusterRows {
    static func memberList(_ response: Etcdserverpb_MemberListResponse) -> (header: [String], rows: [[String]]) {
        let header = ["ID", "Status", "Name", "Peer Addrs", "Client Addrs", "Is Learner"]
        let rows = response.members.map { member in
            [
                String(member.id, radix: 16),
                // A member added but not yet started has no name (etcd learns it from the member's first publish).
                member.name.isEmpty ? "unstarted" : "started",
                member.name,
                member.peerUrls.joined(separator: ","),
                member.clientUrls.joined(separator: ","),
                "\(member.isLearner)",
            ]
        }
        return (header, rows)
    }

    static func endpointHealth(_ list: [EndpointHealth]) -> (header: [String], rows: [[String]]) {
        (["endpoint", "health", "took", "error"], list.map { [$0.endpoint, "\($0.isHealthy)", $0.took, $0.error] })
    }

    static func endpointStatus(_ list: [EndpointStatus]) -> (header: [String], rows: [[String]]) {
        let header = [
            "endpoint", "ID", "version", "db size", "is leader", "is learner", "raft term", "raft index",
            "raft applied index", "errors",
        ]
        let rows = list.map { status in
            let response = status.response
            return [
                status.endpoint,
                String(response.header.memberID, radix: 16),
                response.version,
                // etcdctl converts the signed size with uint64(), so a negative one would wrap the same way.
                GoFormat.bytes(UInt64(bitPattern: response.dbSize)),
                "\(response.leader == response.header.memberID)",
                "\(response.isLearner)",
                "\(response.raftTerm)",
                "\(response.raftIndex)",
                "\(response.raftAppliedIndex)",
                response.errors.joined(separator: ", "),
            ]
        }
        return (header, rows)
    }

    static func endpointHashKV(_ list: [EndpointHashKV]) -> (header: [String], rows: [[String]]) {
        (["endpoint", "hash"], list.map { [$0.endpoint, "\($0.response.hash)"] })
    }
}
