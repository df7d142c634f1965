internal import EtcdAPI
internal import Foundation
internal import GRPCCore
internal import Logging
internal import Raft

/// The peer port's gRPC services: snapshots, cluster info, and requests forwarded to the leader.
struct PeerService: Kvdpb_Peer.SimpleServiceProtocol {
    let clusterID: UInt64
    let localID: NodeID
    let inbox: any PeerInbox
    /// Where incoming snapshot images are written before the node installs them.
    let incomingDirectory: String
    let logger: Logger

    /// Raft messages travel on the peer port's Raft stream (`RaftStream`) instead: the stream
    /// costs no task hop and no HTTP/2 framing per message.
    func sendMessages(
        request: RPCAsyncSequence<Kvdpb_MessageBatch, any Error>,
        context: ServerContext
    ) async throws -> Kvdpb_StreamSummary {
        throw RPCError(code: .unimplemented, message: "kvd: Raft messages travel on the peer port's Raft stream")
    }

    func sendSnapshot(
        request: RPCAsyncSequence<Kvdpb_SnapshotChunk, any Error>,
        context: ServerContext
    ) async throws -> Kvdpb_SnapshotAck {
        var message: Message?
        let path = incomingDirectory + "/incoming-\(UUID().uuidString).snap"
        guard FileManager.default.createFile(atPath: path, contents: nil),
              let file = FileHandle(forWritingAtPath: path) else {
            throw RPCError(code: .internalError, message: "kvd: cannot write incoming snapshot to \(path)")
        }
        var complete = false
        do {
            for try await chunk in request {
                try checkCluster(chunk.clusterID, from: chunk.from)
                if message == nil {
                    guard inbox.isMember(NodeID(chunk.from)) else {
                        throw RPCError(code: .permissionDenied, message: "kvd: snapshot from a member not in the cluster")
                    }
                    message = try Message(decoding: Array(chunk.message))
                }
                if !chunk.data.isEmpty { try file.write(contentsOf: chunk.data) }
                if chunk.last { complete = true }
            }
            try file.synchronize()
            try file.close()
        } catch {
            try? file.close()  // already failing; the partial file is removed below
            try? FileManager.default.removeItem(atPath: path)
            throw error
        }
        guard complete, let message else {
            try? FileManager.default.removeItem(atPath: path)  // an aborted stream leaves nothing to install
            throw RPCError(code: .invalidArgument, message: "kvd: incomplete snapshot stream")
        }
        logger.info("received snapshot", metadata: ["from": "\(message.from)", "index": "\(message.snapshot?.metadata.index ?? .zero)"])
        inbox.deliverSnapshot(message, imagePath: path)
        var ack = Kvdpb_SnapshotAck()
        ack.installed = true
        return ack
    }

    func clusterInfo(request: Kvdpb_ClusterInfoRequest, context: ServerContext) async throws -> Kvdpb_ClusterInfoResponse {
        var response = Kvdpb_ClusterInfoResponse()
        response.clusterID = clusterID
        response.memberID = localID.rawValue
        response.members = inbox.peerMembers().map { member in
            var peer = Kvdpb_PeerMember()
            peer.id = member.id.rawValue
            peer.peerUrls = member.peerURLs
            peer.isLearner = member.isLearner
            return peer
        }
        return response
    }

    func leaseQuery(request: Kvdpb_LeaseQueryRequest, context: ServerContext) async throws -> Kvdpb_LeaseQueryResponse {
        let answer = try await inbox.queryLease(request.id, renew: request.renew)
        var response = Kvdpb_LeaseQueryResponse()
        response.isLeader = answer.isLeader
        response.found = answer.found
        response.ttl = answer.ttlSeconds
        response.grantedTtl = answer.grantedTTLSeconds
        return response
    }

    func memberPromote(request: Kvdpb_MemberPromoteRequest, context: ServerContext) async throws -> Kvdpb_MemberPromoteResponse {
        try await inbox.promoteMember(request.id)
        return Kvdpb_MemberPromoteResponse()
    }

    func hashKV(request: Kvdpb_HashKVRequest, context: ServerContext) async throws -> Kvdpb_HashKVResponse {
        let answer = try await inbox.hashKV(upTo: request.revision)
        var response = Kvdpb_HashKVResponse()
        response.hash = answer.hash
        response.compactRevision = answer.compactRevision
        response.revision = answer.revision
        response.memberID = answer.memberID
        return response
    }

    private func checkCluster(_ remote: UInt64, from: UInt64) throws {
        guard remote == clusterID else {
            logger.error("refused a peer of another cluster", metadata: [
                "from": "\(String(from, radix: 16))", "remote-cluster-id": "\(String(remote, radix: 16))",
                "local-cluster-id": "\(String(clusterID, radix: 16))",
            ])
            throw RPCError(code: .failedPrecondition, message: "kvd: cluster ID mismatch")
        }
    }
}
