internal import Storage
internal import Synchronization
internal import EtcdAPI
internal import GRPCCore
internal import MVCC
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
            let view = store.readView()
            var response = Etcdserverpb_RangeResponse(try mvcc { try view.range(RangeRequest(request)) })
            header().fill(&response.header, currentRevision: view.current)
            return response
        }
    }

    func put(request: Etcdserverpb_PutRequest, context: ServerContext) async throws -> Etcdserverpb_PutResponse {
        try await edge {
            if isLearner() { throw APIError.notSupportedForLearner }
            try RequestChecks.check(request)
            var proposal = Kvdpb_InternalRequest.with { $0.put = request }
            try await auth.stamp(&proposal)
            guard case .put(let result) = try await writes.propose(proposal) else {
                preconditionFailure("a put must yield a put result")
            }
            var response = Etcdserverpb_PutResponse(result)
            header().fill(&response.header, currentRevision: store.currentRevision)
            return response
        }
    }

    func deleteRange(request: Etcdserverpb_DeleteRangeRequest, context: ServerContext) async throws -> Etcdserverpb_DeleteRangeResponse {
        try await edge {
            if isLearner() { throw APIError.notSupportedForLearner }
            try RequestChecks.check(request)
            var proposal = Kvdpb_InternalRequest.with { $0.deleteRange = request }
            try await auth.stamp(&proposal)
            guard case .deleteRange(let result) = try await writes.propose(proposal) else {
                preconditionFailure("a delete must yield a delete result")
            }
            var response = Etcdserverpb_DeleteRangeResponse(result)
            header().fill(&response.header, currentRevision: store.currentRevision)
            return response
        }
    }

    func txn(request: Etcdserverpb_TxnRequest, context: ServerContext) async throws -> Etcdserverpb_TxnResponse {
        try await edge {
            if isLearner() { throw APIError.notSupportedForLearner }
            try RequestChecks.check(request, maxTxnOps: limits.txnOpsMax)
            let txn = TxnRequest(request)
            let result: TxnResult
            if txn.isReadOnly {
                // etcd serves read-only txns off the write path, like a Range.
                if !Self.isSerializable(txn: request) { try await reads.waitForReadIndex() }
                try await auth.checkTxn(request)
                let view = store.readView()
                result = try mvcc { try view.txn(txn) }
            } else {
                var proposal = Kvdpb_InternalRequest.with { $0.txn = request }
                try await auth.stamp(&proposal)
                guard case .txn(let written) = try await writes.propose(proposal) else {
                    preconditionFailure("a txn must yield a txn result")
                }
                result = written
            }
            var response = Etcdserverpb_TxnResponse(result)
            header().fill(&response.header, currentRevision: store.currentRevision)
            return response
        }
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
