internal import Storage
internal import MVCC
internal import SwiftProtobuf
internal import Synchronization
internal import EtcdAPI
internal import Foundation
internal import GRPCCore
internal import Raft
internal import Transport
internal import Logging

/// etcd's Cluster service (etcd `api/v3rpc/member.go`): membership changes go through Raft as
/// conf change entries, one at a time; the member list is the applied membership.
struct ClusterService: Etcdserverpb_Cluster.SimpleServiceProtocol {
    let loop: NodeLoop
    let memberID: MemberID
    let clusterID: MemberID
    let transport: PeerTransport
    let auth: Authenticator
    let logger: Logger
    /// etcd's `HealthInterval`: a peer counts as connected once its stream has been up this long.
    static let healthInterval = Duration.seconds(5)

    private func isActive(_ id: MemberID) -> Bool {
        id == memberID || transport.activeSince(NodeID(id.value)) != nil
    }

    /// For the log of a refused change: each voter and since when this member's stream to it is up.
    private func connectivity(_ membership: Membership) -> String {
        membership.members.filter { !$0.isLearner }.map { member in
            let since = transport.activeSince(NodeID(member.id.value)).map { "up \($0.duration(to: .now))" } ?? "down"
            return "\(member.id): \(member.id == memberID ? "self" : since)"
        }.joined(separator: ", ")
    }

    private func isConnected(_ id: MemberID) -> Bool {
        if id == memberID { return true }
        guard let since = transport.activeSince(NodeID(id.value)) else { return false }
        return since.duration(to: .now) >= Self.healthInterval
    }

    func memberAdd(request: Etcdserverpb_MemberAddRequest, context: ServerContext) async throws -> Etcdserverpb_MemberAddResponse {
        try await edge {
            // etcd's checkMembershipOperationPermission.
            try await auth.checkAdmin()
            let urls = try request.peerUrls.map { url throws(APIError) in
                do { return try MemberURL(parsing: url) } catch { throw .memberBadURLs }
            }
            if urls.isEmpty { throw APIError.memberBadURLs }
            let facts = loop.facts.withLock { $0 }
            let taken = Set(facts.membership.members.flatMap(\.peerURLs))
            if request.peerUrls.contains(where: taken.contains) { throw APIError.peerURLExists }
            if request.isLearner && facts.membership.members.filter(\.isLearner).count >= 1 {
                throw APIError.tooManyLearners  // etcd allows one learner at a time
            }
            do {
                if loop.settings.strictReconfigCheck {
                    try facts.membership.checkAdd(isLearner: request.isLearner, connected: isConnected)
                }
            } catch {
                logger.warning("rejecting member add request", metadata: ["error": "\(error)", "voters": "\(connectivity(facts.membership))"])
                throw error
            }
            let id = Self.newMemberID(peerURLs: request.peerUrls, membership: facts.membership, now: Int64(Date().timeIntervalSince1970))
            var context = Kvdpb_MemberContext()
            context.memberID = id.value
            context.peerUrls = request.peerUrls
            context.isLearner = request.isLearner
            let change: ConfChange = request.isLearner ? .addLearner(NodeID(id.value)) : .addVoter(NodeID(id.value))
            try await loop.changeMembership(change, context: context)
            var response = Etcdserverpb_MemberAddResponse()
            response.member = Etcdserverpb_Member(MemberRecord(id: id, name: "", peerURLs: request.peerUrls, clientURLs: [], isLearner: request.isLearner))
            response.members = currentMembers()
            response.header = header()
            return response
        }
    }

    func memberRemove(request: Etcdserverpb_MemberRemoveRequest, context: ServerContext) async throws -> Etcdserverpb_MemberRemoveResponse {
        try await edge {
            // etcd's checkMembershipOperationPermission.
            try await auth.checkAdmin()
            let id = MemberID(request.id)
            let membership = loop.facts.withLock { $0.membership }
            guard let member = membership.member(id) else { throw APIError.memberNotFound }
            // Never remove the last voter, whatever the strict check says.
            if !member.isLearner && membership.members.filter({ !$0.isLearner }).count <= 1 {
                throw APIError.notEnoughStartedMembers
            }
            do {
                if loop.settings.strictReconfigCheck {
                    try membership.checkRemove(id, localID: memberID, active: isActive, connected: isConnected)
                }
            } catch {
                logger.warning("rejecting member remove request", metadata: [
                    "error": "\(error)", "member": "\(id)", "voters": "\(connectivity(membership))",
                ])
                throw error
            }
            var context = Kvdpb_MemberContext()
            context.memberID = id.value
            try await loop.changeMembership(.remove(NodeID(id.value)), context: context)
            var response = Etcdserverpb_MemberRemoveResponse()
            response.members = currentMembers()
            response.header = header()
            return response
        }
    }

    func memberUpdate(request: Etcdserverpb_MemberUpdateRequest, context: ServerContext) async throws -> Etcdserverpb_MemberUpdateResponse {
        try await edge {
            // etcd's checkMembershipOperationPermission.
            try await auth.checkAdmin()
            for url in request.peerUrls {
                do { _ = try MemberURL(parsing: url) } catch { throw APIError.memberBadURLs }
            }
            let membership = loop.facts.withLock { $0.membership }
            guard membership.member(MemberID(request.id)) != nil else { throw APIError.memberNotFound }
            let others = Set(membership.members.filter { $0.id.value != request.id }.flatMap(\.peerURLs))
            if request.peerUrls.contains(where: others.contains) { throw APIError.peerURLExists }
            var attributes = Kvdpb_MemberAttributes()
            attributes.memberID = request.id
            attributes.peerUrls = request.peerUrls
            attributes.updatePeerUrls = true
            _ = try await loop.propose(.with { $0.memberAttributes = attributes })
            var response = Etcdserverpb_MemberUpdateResponse()
            response.members = currentMembers()
            response.header = header()
            return response
        }
    }

    func memberList(request: Etcdserverpb_MemberListRequest, context: ServerContext) async throws -> Etcdserverpb_MemberListResponse {
        var response = Etcdserverpb_MemberListResponse()
        response.members = currentMembers()
        response.header = header()
        return response
    }

    func memberPromote(request: Etcdserverpb_MemberPromoteRequest, context: ServerContext) async throws -> Etcdserverpb_MemberPromoteResponse {
        try await edge {
            // etcd's checkMembershipOperationPermission.
            try await auth.checkAdmin()
            do {
                try await loop.promoteLearner(MemberID(request.id))
            } catch APIError.notLeader {
                try await forwardPromotion(request.id)
            }
            var response = Etcdserverpb_MemberPromoteResponse()
            response.members = currentMembers()
            response.header = header()
            return response
        }
    }

    /// etcd's MemberAdd ID: SHA-1 of the sorted peer URLs and the Unix time in seconds (no cluster
    /// token), so that a member re-added with the same URLs gets a new ID. etcd refuses a re-add
    /// within the same second (the ID is the removed one's); kvd takes the next second's ID.
    static func newMemberID(peerURLs: [String], membership: Membership, now: Int64) -> MemberID {
        var seconds = now
        while true {
            let id = ClusterIdentity.memberID(peerURLs: peerURLs, token: String(seconds))
            if membership.member(id) == nil && !membership.removed.contains(id.value) { return id }
            seconds += 1
        }
    }

    /// A follower cannot tell whether the learner has caught up: the leader decides (etcd
    /// forwards over the peer port too).
    private func forwardPromotion(_ id: UInt64) async throws {
        let (leader, membership) = loop.facts.withLock { ($0.leader, $0.membership) }
        guard leader != .none, let member = membership.member(MemberID(leader.rawValue)) else { throw APIError.noLeader }
        var lastError: any Error = APIError.noLeader
        for address in loop.peerAddresses(member.peerURLs) {
            do {
                try await transport.promoteMember(at: address, id: id, timeout: loop.settings.requestTimeout)
                // Answer with the membership as applied here, like any other member change.
                try await loop.waitForReadIndex()
                return
            } catch let error as RPCError where error.code != .unavailable && error.code != .deadlineExceeded {
                throw error
            } catch {
                lastError = error
            }
        }
        throw lastError
    }

    private func currentMembers() -> [Etcdserverpb_Member] {
        loop.facts.withLock { $0.membership.members }.map(Etcdserverpb_Member.init)
    }

    private func header() -> Etcdserverpb_ResponseHeader {
        var header = Etcdserverpb_ResponseHeader()
        header.clusterID = clusterID.value
        header.memberID = memberID.value
        header.raftTerm = loop.facts.withLock { $0.term.rawValue }
        return header  // etcd's Cluster service leaves the revision out
    }
}

extension Etcdserverpb_Member {
    init(_ record: MemberRecord) {
        self.init()
        id = record.id.value
        name = record.name
        peerUrls = record.peerURLs
        clientUrls = record.clientURLs
        isLearner = record.isLearner
    }
}
