// The API edge: etcd's request validation (key.go rules, including checkIntervals' overlap
// rules for txns), the error table (code and exact message), URL parsing, and member/cluster IDs
// computed exactly as etcd computes them (expected IDs read from a real etcd 3.4.23 started with
// the same flags).
import EtcdAPI
import Foundation
import GRPCCore
@testable import Server
import Testing

func put(_ key: String) -> Etcdserverpb_RequestOp {
    var op = Etcdserverpb_RequestOp()
    var put = Etcdserverpb_PutRequest()
    put.key = Data(key.utf8)
    op.requestPut = put
    return op
}

func delete(_ key: String, _ end: String = "") -> Etcdserverpb_RequestOp {
    var op = Etcdserverpb_RequestOp()
    var delete = Etcdserverpb_DeleteRangeRequest()
    delete.key = Data(key.utf8)
    delete.rangeEnd = Data(end.utf8)
    op.requestDeleteRange = delete
    return op
}

func txn(_ success: [Etcdserverpb_RequestOp], _ failure: [Etcdserverpb_RequestOp] = []) -> Etcdserverpb_TxnRequest {
    var request = Etcdserverpb_TxnRequest()
    request.success = success
    request.failure = failure
    return request
}

func nested(_ inner: Etcdserverpb_TxnRequest) -> Etcdserverpb_RequestOp {
    var op = Etcdserverpb_RequestOp()
    op.requestTxn = inner
    return op
}

func checkError(_ request: Etcdserverpb_TxnRequest, max: Int = 128) -> APIError? {
    do {
        try RequestChecks.check(request, maxTxnOps: max)
        return nil
    } catch {
        return error
    }
}

@Suite struct RequestChecksTests {
    @Test func putRules() {
        var request = Etcdserverpb_PutRequest()
        #expect(throws: APIError.emptyKey) { try RequestChecks.check(request) }
        request.key = Data("k".utf8)
        request.ignoreValue = true
        request.value = Data("v".utf8)
        #expect(throws: APIError.valueProvided) { try RequestChecks.check(request) }
        request.value = Data()
        request.ignoreLease = true
        request.lease = 5
        #expect(throws: APIError.leaseProvided) { try RequestChecks.check(request) }
    }

    /// etcd 3.5's check (3.4 ignores an unknown sort order and panics on an unknown target),
    /// in a Range and in a Txn's range.
    @Test func rangeSortOptionsOutsideTheEnumsAreRefused() {
        var request = Etcdserverpb_RangeRequest()
        request.key = Data("k".utf8)
        request.sortOrder = .descend
        request.sortTarget = .mod
        #expect(throws: Never.self) { try RequestChecks.check(request) }
        request.sortTarget = .UNRECOGNIZED(99)
        #expect(throws: APIError.invalidSortOption) { try RequestChecks.check(request) }
        request.sortTarget = .key
        request.sortOrder = .UNRECOGNIZED(5)
        #expect(throws: APIError.invalidSortOption) { try RequestChecks.check(request) }
        var op = Etcdserverpb_RequestOp()
        op.requestRange = request
        #expect(checkError(txn([op])) == .invalidSortOption)
    }

    @Test(arguments: [
        (txn([put("a"), put("b")]), nil),
        (txn([put("a"), put("a")]), APIError.duplicateKey),
        (txn([put("b"), delete("a", "c")]), .duplicateKey),
        (txn([put("a"), delete("a")]), .duplicateKey),
        // A from-key delete ("\0" end) is the interval [key, "\0"): empty, as in etcd 3.4.
        (txn([put("b"), delete("a", "\u{0}")]), nil),
        // The same key in both branches of one nested txn: only one branch runs.
        (txn([nested(txn([put("a")], [put("a")]))]), nil),
        (txn([nested(txn([put("a")])), put("a")]), .duplicateKey),
        (txn([nested(txn([delete("a")])), put("a")]), .duplicateKey),
        // Success and failure of the top level are checked separately.
        (txn([put("a")], [put("a")]), nil),
        (txn([Etcdserverpb_RequestOp()]), .keyNotFound),
    ] as [(Etcdserverpb_TxnRequest, APIError?)])
    func txnOverlapRules(request: Etcdserverpb_TxnRequest, expected: APIError?) {
        #expect(checkError(request) == expected)
    }

    @Test func txnOpLimitCountsTheLargestList() {
        let ops = (0..<3).map { put("k\($0)") }
        #expect(checkError(txn(ops), max: 3) == nil)
        #expect(checkError(txn(ops + [put("x")]), max: 3) == .tooManyOps)
        // Nested txns get what the parent's largest list leaves.
        #expect(checkError(txn([nested(txn([put("a"), put("b")]))]), max: 2) == .tooManyOps)
    }

    @Test(arguments: [
        (APIError.compacted, RPCError.Code.outOfRange, "etcdserver: mvcc: required revision has been compacted"),
        (.futureRevision, .outOfRange, "etcdserver: mvcc: required revision is a future revision"),
        (.emptyKey, .invalidArgument, "etcdserver: key is not provided"),
        (.invalidSortOption, .invalidArgument, "etcdserver: invalid sort option"),
        (.duplicateKey, .invalidArgument, "etcdserver: duplicate key given in txn request"),
        (.tooManyOps, .invalidArgument, "etcdserver: too many operations in txn request"),
        (.leaseNotFound, .notFound, "etcdserver: requested lease not found"),
        (.requestTooLarge, .invalidArgument, "etcdserver: request is too large"),
        (.tooManyRequests, .resourceExhausted, "etcdserver: too many requests"),
    ])
    func errorsUseEtcdCodesAndMessages(error: APIError, code: RPCError.Code, message: String) {
        #expect(error.rpcError.code == code)
        #expect(error.rpcError.message == message)
    }

    @Test func urlParsing() throws {
        let url = try MemberURL(parsing: "https://127.0.0.1:2379")
        #expect(url.isTLS && url.host == "127.0.0.1" && url.port == 2379)
        let v6 = try MemberURL(parsing: "http://[::1]:2380")
        #expect(v6.host == "::1" && v6.port == 2380 && !v6.isTLS)
        #expect(throws: ConfigurationError.self) { try MemberURL(parsing: "unix://x") }  // no port
        let socket = try MemberURL(parsing: "unixs://localhost:12")
        #expect(socket.isUnixSocket && socket.isTLS && socket.host == "localhost" && socket.port == 12)
        #expect(socket.description == "unixs://localhost:12")
        #expect(throws: ConfigurationError.self) { try MemberURL(parsing: "tcp://127.0.0.1:2380") }
        #expect(throws: ConfigurationError.self) { try MemberURL(parsing: "http://127.0.0.1") }
    }

    @Test func idsMatchEtcd() {
        // etcd 3.4.23 --name n1 --initial-advertise-peer-urls http://127.0.0.1:25380
        //   --initial-cluster n1=http://127.0.0.1:25380 --initial-cluster-token tok-1
        let member = ClusterIdentity.memberID(peerURLs: ["http://127.0.0.1:25380"], token: "tok-1")
        #expect(member.value == 935_477_360_404_473_271)
        #expect(ClusterIdentity.clusterID(memberIDs: [member]).value == 17_988_996_838_769_288_515)
    }
}
