// `-w fields` (etcdctl printer_fields.go): one `"Name" : value` line per field, strings in Go's %q. Membership
// changes and leader moves have no fields output in etcdctl 3.4.
// NB: etcdctl 3.4's fields printer ignores `--hex`; so does this one.

import EtcdAPI

struct FieldsPrinter: Printer {
    func put(_ response: Etcdserverpb_PutResponse) {
        header(response.header)
        if response.hasPrevKv { kv("Prev", response.prevKv) }
    }

    func get(_ response: Etcdserverpb_RangeResponse) {
        header(response.header)
        for item in response.kvs { kv("", item) }
        Console.out("\"More\" : \(response.more)\n\"Count\" : \(response.count)\n")
    }

    func del(_ response: Etcdserverpb_DeleteRangeResponse) {
        header(response.header)
        Console.out("\"Deleted\" : \(response.deleted)\n")
        for item in response.prevKvs { kv("Prev", item) }
    }

    func txn(_ response: Etcdserverpb_TxnResponse) {
        header(response.header)
        Console.out("\"Succeeded\" : \(response.succeeded)\n")
        for op in response.responses {
            switch op.response {
            case .responseDeleteRange(let inner)?: del(inner)
            case .responsePut(let inner)?: put(inner)
            case .responseRange(let inner)?: get(inner)
            case .responseTxn?, nil: Console.out("\"Unknown\" : \(GoFormat.quote("\(op)"))\n")
            }
        }
    }

    func memberList(_ response: Etcdserverpb_MemberListResponse) {
        header(response.header)
        Console.out(Self.members(response.members))
    }

    static func members(_ members: [Etcdserverpb_Member]) -> String {
        members.map { member in
            "\"ID\" : \(member.id)\n\"Name\" : \(GoFormat.quote(member.name))\n"
                + member.peerUrls.map { "\"PeerURL\" : \(GoFormat.quote($0))\n" }.joined()
                + member.clientUrls.map { "\"ClientURL\" : \(GoFormat.quote($0))\n" }.joined()
                + "\"IsLearner\" : \(member.isLearner)\n\n"
        }.joined()
    }

    func memberAdd(_ response: Etcdserverpb_MemberAddResponse) throws(CommandExit) { throw unsupported(.fields) }
    func memberRemove(id: UInt64, _ response: Etcdserverpb_MemberRemoveResponse) throws(CommandExit) {
        throw unsupported(.fields)
    }
    func memberUpdate(id: UInt64, _ response: Etcdserverpb_MemberUpdateResponse) throws(CommandExit) {
        throw unsupported(.fields)
    }
    func memberPromote(id: UInt64, _ response: Etcdserverpb_MemberPromoteResponse) throws(CommandExit) {
        throw unsupported(.fields)
    }
    func moveLeader(from leaderID: UInt64, to targetID: UInt64, _ response: Etcdserverpb_MoveLeaderResponse)
        throws(CommandExit)
    { throw unsupported(.fields) }

    func endpointHealth(_ list: [EndpointHealth]) {
        for health in list {
            // Go's Println puts a space between operands, so an empty error still leaves `"Error" : `.
            Console.out(
                "\"Endpoint\" : \(GoFormat.quote(health.endpoint))\n\"Health\" : \(health.isHealthy)\n"
                    + "\"Took\" : \(health.took)\n\"Error\" : \(health.error)\n\n")
        }
    }

    func endpointStatus(_ list: [EndpointStatus]) {
        for status in list {
            let response = status.response
            header(response.header)
            // `"Errors" :` is Go's %v of a []string: "[a b]".
            Console.out(
                "\"Version\" : \(GoFormat.quote(response.version))\n\"DBSize\" : \(response.dbSize)\n"
                    + "\"Leader\" : \(response.leader)\n\"IsLearner\" : \(response.isLearner)\n"
                    + "\"RaftIndex\" : \(response.raftIndex)\n\"RaftTerm\" : \(response.raftTerm)\n"
                    + "\"RaftAppliedIndex\" : \(response.raftAppliedIndex)\n"
                    + "\"Errors\" : [\(response.errors.joined(separator: " "))]\n"
                    + "\"Endpoint\" : \(GoFormat.quote(status.endpoint))\n\n")
        }
    }

    func endpointHashKV(_ list: [EndpointHashKV]) {
        for hash in list {
            header(hash.response.header)
            Console.out("\"Endpoint\" : \(GoFormat.quote(hash.endpoint))\n\"Hash\" : \(hash.response.hash)\n\n")
        }
    }

    private func header(_ header: Etcdserverpb_ResponseHeader) { Console.out(Self.headerLines(header)) }

    private func kv(_ prefix: String, _ kv: Mvccpb_KeyValue) { Console.out(Self.kvLines(prefix, kv)) }

    static func headerLines(_ header: Etcdserverpb_ResponseHeader) -> String {
        "\"ClusterID\" : \(header.clusterID)\n\"MemberID\" : \(header.memberID)\n"
            + "\"Revision\" : \(header.revision)\n\"RaftTerm\" : \(header.raftTerm)\n"
    }

    static func kvLines(_ prefix: String, _ kv: Mvccpb_KeyValue) -> String {
        (
            "\"\(prefix)Key\" : \(GoFormat.quote(Array(kv.key)))\n"
                + "\"\(prefix)CreateRevision\" : \(kv.createRevision)\n"
                + "\"\(prefix)ModRevision\" : \(kv.modRevision)\n"
                + "\"\(prefix)Version\" : \(kv.version)\n"
                + "\"\(prefix)Value\" : \(GoFormat.quote(Array(kv.value)))\n"
                + "\"\(prefix)Lease\" : \(kv.lease)\n")
    }
}
