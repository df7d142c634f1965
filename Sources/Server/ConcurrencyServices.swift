internal import EtcdAPI
internal import Foundation
internal import GRPCCore
internal import GRPCInProcessTransport
internal import SwiftProtobuf

/// The member's own KV, Watch and Lease services as a client sees them, through the in-process
/// transport. etcd builds its lock and election services (and its JSON gateway) on a client of
/// itself; kvd does the same, so that a lock is exactly the keys, leases and revisions etcd's
/// concurrency package makes, with the same checks and errors as any client's requests.
struct SelfClient: Sendable {
    let kv: Etcdserverpb_KV.Client<InProcessTransport.Client>
    let watch: Etcdserverpb_Watch.Client<InProcessTransport.Client>
    let lease: Etcdserverpb_Lease.Client<InProcessTransport.Client>

    init(_ client: GRPCClient<InProcessTransport.Client>) {
        kv = Etcdserverpb_KV.Client(wrapping: client)
        watch = Etcdserverpb_Watch.Client(wrapping: client)
        lease = Etcdserverpb_Lease.Client(wrapping: client)
    }

    /// etcd's `concurrency.NewSession(WithLease(id))` followed by `Orphan()`, as its lock and
    /// election servers make it: the caller's lease, or without one (0) a new 60 s lease that
    /// nobody keeps alive.
    func sessionLease(_ lease: Int64) async throws -> Int64 {
        guard lease == 0 else { return lease }
        var grant = Etcdserverpb_LeaseGrantRequest()
        grant.ttl = 60
        return try await self.lease.leaseGrant(grant).id
    }

    /// A session's key under `prefix`: the prefix and the lease ID in hex (Go's `%x`).
    static func sessionKey(_ prefix: Data, lease: Int64) -> Data {
        prefix + Data(String(lease, radix: 16).utf8)
    }

    /// etcd's `clientv3.GetPrefixRangeEnd`.
    static func prefixEnd(_ prefix: Data) -> Data {
        var end = [UInt8](prefix)
        while let last = end.last {
            if last < 0xff {
                end[end.count - 1] = last + 1
                return Data(end)
            }
            end.removeLast()
        }
        return Data([0])
    }

    /// The compare "`key` was created at `revision`" (0: does not exist).
    static func created(_ key: Data, at revision: Int64) -> Etcdserverpb_Compare {
        .with {
            $0.key = key
            $0.target = .create
            $0.result = .equal
            $0.createRevision = revision
        }
    }

    /// The key under `prefix` created first (`WithFirstCreate`) or last (`WithLastCreate`),
    /// optionally among those created at or below `maxCreateRevision`.
    static func byCreation(
        _ prefix: Data, first: Bool, maxCreateRevision: Int64 = 0
    ) -> Etcdserverpb_RangeRequest {
        var range = Etcdserverpb_RangeRequest()
        range.key = prefix
        range.rangeEnd = prefixEnd(prefix)
        range.sortTarget = .create
        range.sortOrder = first ? .ascend : .descend
        range.limit = 1
        range.maxCreateRevision = maxCreateRevision
        return range
    }

    /// etcd's `waitDeletes`: returns once every key under `prefix` created at or below
    /// `maxCreateRevision` is gone, with the header of the read that saw none.
    func waitDeletes(_ prefix: Data, maxCreateRevision: Int64) async throws -> Etcdserverpb_ResponseHeader {
        while true {
            let found = try await kv.range(Self.byCreation(prefix, first: false, maxCreateRevision: maxCreateRevision))
            guard let last = found.kvs.first else { return found.header }
            try await waitDelete(last.key, from: found.header.revision)
        }
    }

    /// etcd's `waitDelete`: watches `key` from `revision` until it is deleted.
    func waitDelete(_ key: Data, from revision: Int64) async throws {
        try await watching(.with { $0.key = key; $0.startRevision = revision }) { responses in
            for try await response in responses {
                if response.compactRevision != 0 {
                    throw RPCError(code: .unknown, message: APIError.compacted.rpcError.message)
                }
                if response.canceled { break }
                if response.events.contains(where: { $0.type == .delete }) { return }
            }
            throw RPCError(code: .unknown, message: "lost watcher waiting for delete")
        }
    }
}

extension SelfClient {
    /// One watch, handled by `handle` until it returns; the request side is closed after the
    /// create request (the watch stays open).
    func watching<T: Sendable>(
        _ create: Etcdserverpb_WatchCreateRequest,
        _ handle: @Sendable @escaping (RPCAsyncSequence<Etcdserverpb_WatchResponse, any Error>) async throws -> T
    ) async throws -> T {
        let request = Etcdserverpb_WatchRequest.with { $0.createRequest = create }
        return try await watch.watch { writer in
            try await writer.write(request)
        } onResponse: { response in
            try await handle(response.messages)
        }
    }
}

/// Runs `body` and turns what fails into the status etcd's lock and election servers answer
/// with: their errors (and their clients' errors, which etcd's client wraps) reach the caller as
/// gRPC's Unknown with etcd's message.
private func asEtcdConcurrencyError<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as RPCError {
        if error.code == .cancelled || error.code == .unknown { throw error }
        throw RPCError(code: .unknown, message: error.message)
    } catch let error as ConcurrencyError {
        throw RPCError(code: .unknown, message: error.rawValue)
    }
}

/// Runs `body` until it returns or the caller cancels the RPC, then throws `CancellationError`.
/// grpc-swift tells a handler of its caller's cancellation through the context, not by cancelling
/// the handler's task: without this, a Lock or Campaign whose caller went away waited on (and
/// kept its key) until the lock was free.
private func untilRPCCancelled<T: Sendable>(
    _ context: ServerContext, _ body: @Sendable @escaping () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await context.cancellation.cancelled
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else { throw CancellationError() }
        return value
    }
}

/// The errors of etcd's concurrency package and election server, by their messages.
enum ConcurrencyError: String, Error {
    case notLeader = "election: not leader"
    case noLeader = "election: no leader"
    case missingLeaderKey = "\"leader\" field must be provided"
}

/// etcd's v3lock service (`etcdctl lock` through the server, `/v3/lock/*` in the gateway): a lock
/// is etcd's `concurrency.Mutex`, a key `name/<lease in hex>` attached to the caller's lease; the
/// holder is the key under `name/` created first.
struct LockService: V3lockpb_Lock.SimpleServiceProtocol {
    let client: SelfClient

    func lock(request: V3lockpb_LockRequest, context: ServerContext) async throws -> V3lockpb_LockResponse {
        try await asEtcdConcurrencyError {
            let lease = try await client.sessionLease(request.lease)
            let prefix = request.name + Data("/".utf8)
            let key = SelfClient.sessionKey(prefix, lease: lease)
            var txn = Etcdserverpb_TxnRequest()
            txn.compare = [SelfClient.created(key, at: 0)]
            let owner = SelfClient.byCreation(prefix, first: true)
            txn.success = [
                .with { $0.requestPut = .with { $0.key = key; $0.lease = lease } },
                .with { $0.requestRange = owner },
            ]
            txn.failure = [.with { $0.requestRange = .with { $0.key = key } }, .with { $0.requestRange = owner }]
            let answer = try await client.kv.txn(txn)
            var myRevision = answer.header.revision
            if !answer.succeeded, case .responseRange(let mine) = answer.responses[0].response, let kv = mine.kvs.first {
                myRevision = kv.createRevision
            }
            var response = V3lockpb_LockResponse()
            response.key = key
            response.header = answer.header
            if case .responseRange(let holder) = answer.responses[1].response,
                let first = holder.kvs.first, first.createRevision != myRevision
            {
                do {
                    response.header = try await untilRPCCancelled(context) { [myRevision] in
                        try await client.waitDeletes(prefix, maxCreateRevision: myRevision - 1)
                    }
                } catch {
                    // As etcd's Mutex: a caller that gave up (or failed) waiting leaves no key
                    // behind. If this delete fails too, the key goes with its lease.
                    _ = try? await client.kv.deleteRange(.with { $0.key = key })
                    throw error
                }
            }
            return response
        }
    }

    func unlock(request: V3lockpb_UnlockRequest, context: ServerContext) async throws -> V3lockpb_UnlockResponse {
        try await asEtcdConcurrencyError {
            let deleted = try await client.kv.deleteRange(.with { $0.key = request.key })
            var response = V3lockpb_UnlockResponse()
            response.header = deleted.header
            return response
        }
    }
}

/// etcd's v3election service (`/v3/election/*`): an election is etcd's `concurrency.Election`,
/// whose candidates are keys `name/<lease in hex>`; the leader is the one created first, and its
/// value is what it proclaims.
struct ElectionService: V3electionpb_Election.SimpleServiceProtocol {
    let client: SelfClient

    func campaign(request: V3electionpb_CampaignRequest, context: ServerContext) async throws -> V3electionpb_CampaignResponse {
        try await asEtcdConcurrencyError {
            let lease = try await client.sessionLease(request.lease)
            let prefix = request.name + Data("/".utf8)
            let key = SelfClient.sessionKey(prefix, lease: lease)
            var txn = Etcdserverpb_TxnRequest()
            txn.compare = [SelfClient.created(key, at: 0)]
            txn.success = [.with { $0.requestPut = .with { $0.key = key; $0.value = request.value; $0.lease = lease } }]
            txn.failure = [.with { $0.requestRange = .with { $0.key = key } }]
            let answer = try await client.kv.txn(txn)
            var leader = V3electionpb_LeaderKey()
            leader.name = request.name
            leader.key = key
            leader.rev = answer.header.revision
            leader.lease = lease
            if !answer.succeeded, case .responseRange(let mine) = answer.responses[0].response, let kv = mine.kvs.first {
                leader.rev = kv.createRevision
                if kv.value != request.value {
                    do {
                        _ = try await proclaim(leader, value: request.value)
                    } catch {
                        _ = try? await resign(leader)
                        throw error
                    }
                }
            }
            do {
                _ = try await untilRPCCancelled(context) { [leader] in
                    try await client.waitDeletes(prefix, maxCreateRevision: leader.rev - 1)
                }
            } catch {
                // As etcd: a campaign given up by its caller resigns (if that fails too, the key
                // goes with its lease); one that failed otherwise leaves its key for the lease.
                if error is CancellationError { _ = try? await resign(leader) }
                throw error
            }
            var response = V3electionpb_CampaignResponse()
            response.header = answer.header
            response.leader = leader
            return response
        }
    }

    func proclaim(request: V3electionpb_ProclaimRequest, context: ServerContext) async throws -> V3electionpb_ProclaimResponse {
        try await asEtcdConcurrencyError {
            guard request.hasLeader else { throw ConcurrencyError.missingLeaderKey }
            var response = V3electionpb_ProclaimResponse()
            response.header = try await proclaim(request.leader, value: request.value)
            return response
        }
    }

    /// etcd's `Election.Proclaim`: a new value, only while the leader key is still the one the
    /// campaign created.
    private func proclaim(_ leader: V3electionpb_LeaderKey, value: Data) async throws -> Etcdserverpb_ResponseHeader {
        var txn = Etcdserverpb_TxnRequest()
        txn.compare = [Self.isStill(leader)]
        txn.success = [.with { $0.requestPut = .with { $0.key = leader.key; $0.value = value; $0.lease = leader.lease } }]
        let answer = try await client.kv.txn(txn)
        guard answer.succeeded else { throw ConcurrencyError.notLeader }
        return answer.header
    }

    func leader(request: V3electionpb_LeaderRequest, context: ServerContext) async throws -> V3electionpb_LeaderResponse {
        try await asEtcdConcurrencyError {
            let found = try await client.kv.range(SelfClient.byCreation(request.name + Data("/".utf8), first: true))
            guard let kv = found.kvs.first else { throw ConcurrencyError.noLeader }
            var response = V3electionpb_LeaderResponse()
            response.header = found.header
            response.kv = kv
            return response
        }
    }

    /// etcd's `Election.Observe`: the leader now (or the first candidate to appear), then every
    /// value it proclaims, and the next leader once its key is deleted, until the caller leaves.
    func observe(
        request: V3electionpb_LeaderRequest, response: RPCWriter<V3electionpb_LeaderResponse>, context: ServerContext
    ) async throws {
        try await asEtcdConcurrencyError {
            let prefix = request.name + Data("/".utf8)
            while true {
                let found = try await client.kv.range(SelfClient.byCreation(prefix, first: true))
                var header = found.header
                var leader: Mvccpb_KeyValue
                if let first = found.kvs.first {
                    leader = first
                } else {
                    (header, leader) = try await firstPut(under: prefix, from: found.header.revision)
                    header.revision = leader.modRevision
                }
                try await response.write(.with { $0.header = header; $0.kv = leader })
                try await followUntilDeleted(leader.key, from: header.revision + 1, response: response)
            }
        }
    }

    /// The first key put under `prefix` from `revision` on.
    private func firstPut(under prefix: Data, from revision: Int64) async throws -> (Etcdserverpb_ResponseHeader, Mvccpb_KeyValue) {
        let create = Etcdserverpb_WatchCreateRequest.with {
            $0.key = prefix
            $0.rangeEnd = SelfClient.prefixEnd(prefix)
            $0.startRevision = revision
        }
        return try await client.watching(create) { responses in
            for try await answer in responses {
                if answer.canceled || answer.compactRevision != 0 { break }
                if let put = answer.events.first(where: { $0.type == .put }) { return (answer.header, put.kv) }
            }
            throw CancellationError()
        }
    }

    /// Sends every new value of the leader's key until it is deleted.
    private func followUntilDeleted(
        _ key: Data, from revision: Int64, response: RPCWriter<V3electionpb_LeaderResponse>
    ) async throws {
        try await client.watching(.with { $0.key = key; $0.startRevision = revision }) { responses in
            for try await answer in responses {
                if answer.canceled || answer.compactRevision != 0 { throw CancellationError() }
                for event in answer.events {
                    if event.type == .delete { return }
                    try await response.write(.with { $0.header = answer.header; $0.kv = event.kv })
                }
            }
            throw CancellationError()
        }
    }

    func resign(request: V3electionpb_ResignRequest, context: ServerContext) async throws -> V3electionpb_ResignResponse {
        try await asEtcdConcurrencyError {
            guard request.hasLeader else { throw ConcurrencyError.missingLeaderKey }
            var response = V3electionpb_ResignResponse()
            response.header = try await resign(request.leader)
            return response
        }
    }

    /// etcd's `Election.Resign`: deletes the leader key if it is still the campaign's; answers
    /// with the header either way.
    @discardableResult
    private func resign(_ leader: V3electionpb_LeaderKey) async throws -> Etcdserverpb_ResponseHeader {
        var txn = Etcdserverpb_TxnRequest()
        txn.compare = [Self.isStill(leader)]
        txn.success = [.with { $0.requestDeleteRange = .with { $0.key = leader.key } }]
        return try await client.kv.txn(txn).header
    }

    private static func isStill(_ leader: V3electionpb_LeaderKey) -> Etcdserverpb_Compare {
        SelfClient.created(leader.key, at: leader.rev)
    }
}
