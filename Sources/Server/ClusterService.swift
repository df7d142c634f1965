internal import Storage
internal import MVCC
internal import SwiftProtobuf
internal import Synchronization
internal import EtcdAPI
internal import Foundation
internal import GRPCCore
internal import Raft

/// etcd's Cluster service (etcd `api/v3rpc/member.go`): membership changes go through Raft as
/// conf change entries, one at a time; the member list is the applied membership.
struct ClusterService: Etcdserverpb_Cluster.SimpleServiceProtocol {
    let loop: NodeLoop
    let memberID: MemberID
    let clusterID: MemberID
    let token: String

    func memberAdd(request: Etcdserverpb_MemberAddRequest, context: ServerContext) async throws -> Etcdserverpb_MemberAddResponse {
        try await edge {
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
            // etcd: a new member's ID also hashes the current time, so that a re-added member
            // with the same URLs gets a new ID.
            let id = ClusterIdentity.memberID(peerURLs: request.peerUrls, token: token + String(Int(Date().timeIntervalSince1970)))
            if facts.membership.member(id) != nil || facts.membership.removed.contains(id.value) { throw APIError.memberExists }
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
            let id = MemberID(request.id)
            let membership = loop.facts.withLock { $0.membership }
            guard let member = membership.member(id) else { throw APIError.memberNotFound }
            // etcd's strict reconfiguration check: never remove the last voter.
            if !member.isLearner && membership.members.filter({ !$0.isLearner }).count <= 1 {
                throw APIError.notEnoughStartedMembers
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
            let id = MemberID(request.id)
            guard let member = loop.facts.withLock({ $0.membership.member(id) }) else { throw APIError.memberNotFound }
            guard member.isLearner else { throw APIError.memberNotLearner }
            try loop.checkLearnerReady(NodeID(id.value))
            var context = Kvdpb_MemberContext()
            context.memberID = id.value
            try await loop.changeMembership(.promote(NodeID(id.value)), context: context)
            var response = Etcdserverpb_MemberPromoteResponse()
            response.members = currentMembers()
            response.header = header()
            return response
        }
    }

    private func currentMembers() -> [Etcdserverpb_Member] {
        loop.facts.withLock { $0.membership.members }.map(Etcdserverpb_Member.init)
    }

    private func header() -> Etcdserverpb_ResponseHeader {
        var header = Etcdserverpb_ResponseHeader()
        header.clusterID = clusterID.value
        header.memberID = memberID.value
        header.raftTerm = loop.facts.withLock { $0.term.rawValue }
        header.revision = loop.store.currentRevision.value
        return header
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
