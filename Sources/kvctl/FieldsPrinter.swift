// `-w fields` (etcdctl printer_fields.go): one `"Name" : value` line per field, strings in Go's %q.
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

    private func header(_ header: Etcdserverpb_ResponseHeader) {
        Console.out(
            "\"ClusterID\" : \(header.clusterID)\n\"MemberID\" : \(header.memberID)\n"
                + "\"Revision\" : \(header.revision)\n\"RaftTerm\" : \(header.raftTerm)\n")
    }

    private func kv(_ prefix: String, _ kv: Mvccpb_KeyValue) {
        Console.out(
            "\"\(prefix)Key\" : \(GoFormat.quote(Array(kv.key)))\n"
                + "\"\(prefix)CreateRevision\" : \(kv.createRevision)\n"
                + "\"\(prefix)ModRevision\" : \(kv.modRevision)\n"
                + "\"\(prefix)Version\" : \(kv.version)\n"
                + "\"\(prefix)Value\" : \(GoFormat.quote(Array(kv.value)))\n"
                + "\"\(prefix)Lease\" : \(kv.lease)\n")
    }
}
