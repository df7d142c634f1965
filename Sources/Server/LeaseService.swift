internal import EtcdAPI
internal import Foundation
internal import GRPCCore
internal import MVCC
internal import Raft
internal import SwiftProtobuf
internal import Synchronization
internal import Transport

/// etcd's Lease service (etcd `api/v3rpc/lease.go`): grants and revocations go through Raft;
/// keep-alives and TTL queries are answered by the leader, which alone tracks deadlines
/// (followers forward them over the peer port).
struct LeaseService: Etcdserverpb_Lease.SimpleServiceProtocol {
    let loop: NodeLoop
    let store: MVCCStore
    let header: @Sendable () -> HeaderFields
    let transport: PeerTransport
    let auth: Authenticator

    func leaseGrant(request: Etcdserverpb_LeaseGrantRequest, context: ServerContext) async throws -> Etcdserverpb_LeaseGrantResponse {
        try await edge {
            // etcd checks the caller's token (auth on or off) before it proposes the grant.
            _ = try await auth.caller()
            if request.ttl > LeaseKeeper.maximumTTLSeconds { throw APIError.leaseTTLTooLarge }
            var grant = request
            // etcd: a server-chosen ID is a request ID made positive; TTLs below the minimum
            // (1.5 election timeouts) are raised to it.
            if grant.id == 0 { grant.id = Int64(bitPattern: loop.requestIDs.make() & (1 << 63 - 1)) }
            grant.ttl = max(grant.ttl, loop.leases.minimumTTLSeconds)
            guard case .leaseGrant(let result) = try await loop.propose(.with { $0.leaseGrant = grant }) else {
                preconditionFailure("a lease grant must yield a grant result")
            }
            var response = Etcdserverpb_LeaseGrantResponse()
            response.id = result.id.value
            response.ttl = result.ttlSeconds
            response.header = Etcdserverpb_ResponseHeader(revision: result.headerRevision)
            header().fill(&response.header, currentRevision: store.currentRevision)
            return response
        }
    }

    func leaseRevoke(request: Etcdserverpb_LeaseRevokeRequest, context: ServerContext) async throws -> Etcdserverpb_LeaseRevokeResponse {
        try await edge {
            guard case .leaseRevoke(let revision) = try await auth.proposeAsCaller(.with { $0.leaseRevoke = request }, through: loop) else {
                preconditionFailure("a lease revoke must yield a revoke result")
            }
            var response = Etcdserverpb_LeaseRevokeResponse()
            response.header = Etcdserverpb_ResponseHeader(revision: revision)
            header().fill(&response.header, currentRevision: store.currentRevision)
            return response
        }
    }

    func leaseKeepAlive(
        request: RPCAsyncSequence<Etcdserverpb_LeaseKeepAliveRequest, any Error>,
        response: RPCWriter<Etcdserverpb_LeaseKeepAliveResponse>,
        context: ServerContext
    ) async throws {
        for try await keepAlive in request {
            let answer = try await edge { try await ask(LeaseID(keepAlive.id), renew: true) }
            var reply = Etcdserverpb_LeaseKeepAliveResponse()
            reply.id = keepAlive.id
            reply.ttl = answer.found ? answer.ttlSeconds : 0  // etcd: an unknown lease answers TTL 0
            header().fill(&reply.header, currentRevision: store.currentRevision)
            try await response.write(reply)
        }
    }

    func leaseTimeToLive(request: Etcdserverpb_LeaseTimeToLiveRequest, context: ServerContext) async throws -> Etcdserverpb_LeaseTimeToLiveResponse {
        try await edge {
            let id = LeaseID(request.id)
            let answer = try await ask(id, renew: false)
            var response = Etcdserverpb_LeaseTimeToLiveResponse()
            response.id = request.id
            if answer.found {
                response.ttl = answer.ttlSeconds
                response.grantedTtl = answer.grantedTTLSeconds
                if request.keys {
                    let keys = store.leaseRecord(id)?.keys ?? []
                    response.keys = keys.sorted { $0.lexicographicallyPrecedes($1) }.map { Data($0) }
                }
            } else {
                response.ttl = -1  // etcd: an unknown lease reports TTL -1
            }
            header().fill(&response.header, currentRevision: store.currentRevision)
            return response
        }
    }

    func leaseLeases(request: Etcdserverpb_LeaseLeasesRequest, context: ServerContext) async throws -> Etcdserverpb_LeaseLeasesResponse {
        var response = Etcdserverpb_LeaseLeasesResponse()
        response.leases = loop.leases.byExpiry(store.leaseRecords().map(\.id)).map { id in
            var status = Etcdserverpb_LeaseStatus()
            status.id = id.value
            return status
        }
        header().fill(&response.header, currentRevision: store.currentRevision)
        return response
    }

    /// Answers on the leader, or forwards to it.
    private func ask(_ id: LeaseID, renew: Bool) async throws(APIError) -> LeaseAnswer {
        let local = try await loop.answerLease(id, renew: renew)
        if local.isLeader { return local }
        let (leader, membership) = loop.facts.withLock { ($0.leader, $0.membership) }
        guard leader != .none, let member = membership.member(MemberID(leader.rawValue)) else { throw .noLeader }
        var lastError: (any Error)?
        for address in loop.peerAddresses(member.peerURLs) {
            do {
                let answer = try await transport.queryLease(at: address, id: id.value, renew: renew, timeout: loop.settings.requestTimeout)
                if answer.isLeader { return answer }
                throw APIError.leaderChanged
            } catch {
                lastError = error
            }
        }
        if let error = lastError as? APIError { throw error }
        throw .timeout
    }
}
