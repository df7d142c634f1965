internal import Storage
internal import Synchronization
internal import EtcdAPI
internal import GRPCCore
internal import MVCC
internal import NIOCore
internal import SwiftProtobuf

/// What every response header carries besides the revision.
package struct HeaderFields: Sendable {
    package var clusterID: MemberID
    package var memberID: MemberID
    /// The Raft term; 1 until the member runs Raft elections.
    package var raftTerm: UInt64

    package init(clusterID: MemberID, memberID: MemberID, raftTerm: UInt64) {
        self.clusterID = clusterID
        self.memberID = memberID
        self.raftTerm = raftTerm
    }

    /// etcd `header.fill`: IDs and term always, the current revision when none was set.
    func fill(_ header: inout Etcdserverpb_ResponseHeader, currentRevision: @autoclosure () -> Revision) {
        header.clusterID = clusterID.value
        header.memberID = memberID.value
        header.raftTerm = raftTerm
        if header.revision == 0 { header.revision = currentRevision().value }
    }
}

/// Limits the KV service enforces before anything is proposed.
package struct KVLimits: Sendable {
    /// etcd `--max-request-bytes` (default 1.5 MiB), checked on the encoded proposal.
    package var requestBytesMax = 1_572_864
    /// etcd `--max-txn-ops` (default 128).
    package var txnOpsMax = 128

    package init() {}
}

/// etcd's KV service (etcd `api/v3rpc/key.go`): validates, reads from a consistent view, and
/// sends writes down the write path.
struct KVService: Etcdserverpb_KV.SimpleServiceProtocol {
    let store: MVCCStore
    let writes: any WriteProposer
    let reads: any ReadBarrier
    let auth: Authenticator
    let header: @Sendable () -> HeaderFields
    let limits: KVLimits
    /// Learners serve only serializable reads (etcd `isRPCSupportedForLearner`).
    let isLearner: @Sendable () -> Bool

    func range(request: Etcdserverpb_RangeRequest, context: ServerContext) async throws -> Etcdserverpb_RangeResponse {
        try await edge {
            try RequestChecks.check(request)
            if !request.serializable {
                if isLearner() { throw APIError.notSupportedForLearner }
                try await reads.waitForReadIndex()
            }
            try await auth.checkRead(key: request.key, rangeEnd: request.rangeEnd)
            if request.rangeEnd.isEmpty { return try rangeResponse(request) }
            return try await blocking { () throws(APIError) in try rangeResponse(request) }
        }
    }

    private func rangeResponse(_ request: Etcdserverpb_RangeRequest) throws(APIError) -> Etcdserverpb_RangeResponse {
        let view = store.readView()
        var response = Etcdserverpb_RangeResponse(try mvcc { try view.range(RangeRequest(request)) })
        header().fill(&response.header, currentRevision: view.current)
        return response
    }

    /// etcd 3.7's `RangeStream`: the answer Range would give, in chunks read one after another
    /// from one view at one revision, so neither side holds the whole result. As etcd: chunks
    /// start at 10 keys and double or halve to stay near `--max-request-bytes`; header, more and
    /// count come on the last chunk only; custom sort orders and revision filters are refused
    /// as Unimplemented (the client falls back to Range).
    func rangeStream(
        request: Etcdserverpb_RangeRequest, response: RPCWriter<Etcdserverpb_RangeStreamResponse>, context: ServerContext
    ) async throws {
        try await edge {
            try RequestChecks.check(request)
            // No order with another target than the key sorts ascending by it (etcd's applier).
            let defaultOrder = request.sortTarget == .key && (request.sortOrder == .none || request.sortOrder == .ascend)
            guard defaultOrder else {
                throw RPCError(code: .unimplemented, message: "RangeStream does not support custom sort orders")
            }
            guard request.minModRevision == 0, request.maxModRevision == 0, request.minCreateRevision == 0,
                request.maxCreateRevision == 0
            else { throw RPCError(code: .unimplemented, message: "RangeStream does not support revision filters") }
            if !request.serializable {
                if isLearner() { throw APIError.notSupportedForLearner }
                try await reads.waitForReadIndex()
            }
            try await auth.checkRead(key: request.key, rangeEnd: request.rangeEnd)
            let view = store.readView()
            let query = RangeRequest(request)
            var last = Etcdserverpb_RangeResponse()
            if query.countOnly {
                last.count = try mvcc { try view.range(query) }.count
            } else {
                var chunks = RangeChunks(view: view, query: query)
                var chunkLimit = 10
                while let keyValues = try chunks.next(limit: chunkLimit) {
                    var out = Etcdserverpb_RangeResponse()
                    out.kvs = keyValues.map { Mvccpb_KeyValue($0, keysOnly: query.keysOnly) }
                    if chunks.isFinished {
                        last = out
                        break
                    }
                    try await response.write(.with { $0.rangeResponse = out })
                    let bytes = keyValues.reduce(0) { $0 + $1.key.count + $1.value.count + 40 }
                    chunkLimit = Self.nextChunkLimit(chunkLimit, lastBytes: bytes, targetBytes: limits.requestBytesMax)
                }
                let finished = chunks
                last.more = finished.more
                last.count = try await blocking { () throws(APIError) in try finished.count() }
            }
            // The header's revision is the store's when the stream began, whatever was read.
            last.header.revision = view.current.value
            header().fill(&last.header, currentRevision: view.current)
            try await response.write(.with { $0.rangeResponse = last })
        }
    }

    /// etcd's `adjustChunkLimit`: double below half the target, halve above twice it, never 0.
    static func nextChunkLimit(_ limit: Int, lastBytes: Int, targetBytes: Int) -> Int {
        if lastBytes < targetBytes / 2 { return limit > Int.max / 2 ? limit : limit * 2 }
        if lastBytes > targetBytes * 2 { return max(1, limit / 2) }
        return limit
    }

    func put(request: Etcdserverpb_PutRequest, context: ServerContext) async throws -> Etcdserverpb_PutResponse {
        try await edge {
            return putResponse(try await auth.proposeAsCaller(try putProposal(request), through: writes))
        }
    }

    private func putProposal(_ request: Etcdserverpb_PutRequest) throws(APIError) -> Kvdpb_InternalRequest {
        if isLearner() { throw .notSupportedForLearner }
        try RequestChecks.check(request)
        return .with { $0.put = request }
    }

    private func putResponse(_ result: WriteResult?) -> Etcdserverpb_PutResponse {
        guard case .put(let result) = result else { preconditionFailure("a put must yield a put result") }
        var response = Etcdserverpb_PutResponse(result)
        header().fill(&response.header, currentRevision: store.currentRevision)
        return response
    }

    func deleteRange(request: Etcdserverpb_DeleteRangeRequest, context: ServerContext) async throws -> Etcdserverpb_DeleteRangeResponse {
        try await edge {
            return deleteRangeResponse(try await auth.proposeAsCaller(try deleteRangeProposal(request), through: writes))
        }
    }

    private func deleteRangeProposal(_ request: Etcdserverpb_DeleteRangeRequest) throws(APIError) -> Kvdpb_InternalRequest {
        if isLearner() { throw .notSupportedForLearner }
        try RequestChecks.check(request)
        return .with { $0.deleteRange = request }
    }

    private func deleteRangeResponse(_ result: WriteResult?) -> Etcdserverpb_DeleteRangeResponse {
        guard case .deleteRange(let result) = result else { preconditionFailure("a delete must yield a delete result") }
        var response = Etcdserverpb_DeleteRangeResponse(result)
        header().fill(&response.header, currentRevision: store.currentRevision)
        return response
    }

    func txn(request: Etcdserverpb_TxnRequest, context: ServerContext) async throws -> Etcdserverpb_TxnResponse {
        try await edge {
            let txn = try checkedTxn(request)
            if txn.isReadOnly {
                // etcd serves read-only txns off the write path, like a Range.
                if !Self.isSerializable(txn: request) { try await reads.waitForReadIndex() }
                try await auth.checkTxn(request)
                let view = store.readView()
                return txnResponse(try await blocking { () throws(APIError) in try mvcc { try view.txn(txn) } })
            }
            return txnResponse(try await auth.proposeAsCaller(.with { $0.txn = request }, through: writes))
        }
    }

    private func checkedTxn(_ request: Etcdserverpb_TxnRequest) throws(APIError) -> TxnRequest {
        if isLearner() { throw .notSupportedForLearner }
        try RequestChecks.check(request, maxTxnOps: limits.txnOpsMax)
        return TxnRequest(request)
    }

    private func txnResponse(_ result: WriteResult?) -> Etcdserverpb_TxnResponse {
        guard case .txn(let written) = result else { preconditionFailure("a txn must yield a txn result") }
        return txnResponse(written)
    }

    private func txnResponse(_ result: TxnResult) -> Etcdserverpb_TxnResponse {
        var response = Etcdserverpb_TxnResponse(result)
        header().fill(&response.header, currentRevision: store.currentRevision)
        return response
    }

    func compact(request: Etcdserverpb_CompactionRequest, context: ServerContext) async throws -> Etcdserverpb_CompactionResponse {
        try await edge {
            if isLearner() { throw APIError.notSupportedForLearner }
            guard case .compact(let result) = try await writes.propose(.with { $0.compaction = request }) else {
                preconditionFailure("a compaction must yield a compaction result")
            }
            // As etcd: the answer waits for the history to be gone here only when asked to.
            if request.physical { try await writes.waitForHistoryRemoval(below: Revision(request.revision)) }
            var response = Etcdserverpb_CompactionResponse()
            response.header = Etcdserverpb_ResponseHeader(revision: result.headerRevision)
            header().fill(&response.header, currentRevision: store.currentRevision)
            return response
        }
    }

    /// etcd `isTxnSerializable`: every top-level op is a serializable range.
    private static func isSerializable(txn: Etcdserverpb_TxnRequest) -> Bool {
        (txn.success + txn.failure).allSatisfy { op in
            if case .requestRange(let range) = op.request { return range.serializable }
            return false
        }
    }
}

/// The calls the client port answers without grpc-swift (`DirectKVCalls`): the same checks,
/// proposals and answers as the handlers above, for a caller on an event loop with no task and
/// no credentials (authentication is off). `completion` runs on `eventLoop`.
extension KVService {
    typealias Completion<Response> = @Sendable (Result<Response, APIError>) -> Void

    /// A single key's Range (a longer one may read for long: it stays on grpc-swift's tasks).
    func range(_ request: Etcdserverpb_RangeRequest, on eventLoop: any EventLoop, completion: @escaping Completion<Etcdserverpb_RangeResponse>) {
        whenReadable(request, on: eventLoop, completion: completion) {
            let answer: @Sendable () -> Void = { completion(Result { () throws(APIError) in try rangeResponse(request) }) }
            if eventLoop.inEventLoop { answer() } else { eventLoop.execute(answer) }
        }
    }

    /// Checks `request` and calls `read` once it may read: at once for a serializable Range, after
    /// the read index for a linearizable one (on whichever thread confirmed it). A refusal goes to
    /// `completion` on `eventLoop`.
    func whenReadable<Response>(
        _ request: Etcdserverpb_RangeRequest, on eventLoop: any EventLoop, completion: @escaping Completion<Response>,
        read: @escaping @Sendable () -> Void
    ) {
        do throws(APIError) {
            try RequestChecks.check(request)
            if request.serializable { return read() }
            if isLearner() { throw .notSupportedForLearner }
            reads.waitForReadIndex(waiter: .callback { result in
                switch result {
                case .success: read()
                case .failure(let error): eventLoop.execute { completion(.failure(error)) }
                }
            })
        } catch {
            completion(.failure(error))
        }
    }

    func put(_ request: Etcdserverpb_PutRequest, on eventLoop: any EventLoop, completion: @escaping Completion<Etcdserverpb_PutResponse>) {
        propose(Result { () throws(APIError) in try putProposal(request) }, on: eventLoop) { completion($0.map(putResponse)) }
    }

    func deleteRange(
        _ request: Etcdserverpb_DeleteRangeRequest, on eventLoop: any EventLoop, completion: @escaping Completion<Etcdserverpb_DeleteRangeResponse>
    ) {
        propose(Result { () throws(APIError) in try deleteRangeProposal(request) }, on: eventLoop) { completion($0.map(deleteRangeResponse)) }
    }

    /// A txn that writes. Returns false, doing nothing, for a read-only one (served like a Range,
    /// possibly long: it stays on grpc-swift's tasks).
    func txn(_ request: Etcdserverpb_TxnRequest, on eventLoop: any EventLoop, completion: @escaping Completion<Etcdserverpb_TxnResponse>) -> Bool {
        let proposal = Result { () throws(APIError) in try checkedTxn(request) }
        if case .success(let txn) = proposal, txn.isReadOnly { return false }
        propose(proposal.map { _ in .with { $0.txn = request } }, on: eventLoop) { completion($0.map(txnResponse)) }
        return true
    }

    private func propose(
        _ proposal: Result<Kvdpb_InternalRequest, APIError>, on eventLoop: any EventLoop,
        completion: @escaping Completion<WriteResult?>
    ) {
        switch proposal {
        case .failure(let error): completion(.failure(error))
        case .success(let proposal):
            writes.propose(proposal, waiter: .callback { result in eventLoop.execute { completion(result) } })
        }
    }
}

/// Runs `body` and maps API errors to etcd's gRPC statuses: the one place where that happens.
func edge<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as APIError {
        throw error.rpcError
    }
}

func edge<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as APIError {
        throw error.rpcError
    }
}

func mvcc<T>(_ body: () throws -> T) throws(APIError) -> T {
    do {
        return try body()
    } catch let error as MVCCError {
        throw APIError(error)
    } catch {
        throw .storage("\(error)")
    }
}

extension KeyRange {
    /// The part of the range after `key` (a key it holds, not the last one).
    func resumed(after key: [UInt8]) -> KeyRange {
        switch self {
        case .key: preconditionFailure("a single key has nothing after it")
        case .from: .from(key + [0])
        case .range(_, let end): .range(start: key + [0], end: end)
        }
    }
}
