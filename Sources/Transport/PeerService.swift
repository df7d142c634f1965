internal import EtcdAPI
internal import Foundation
internal import GRPCCore
internal import Logging
internal import Raft

/// The receiving side of the peer port: checks who is sending, decodes, hands to the inbox.
struct PeerService: Kvdpb_Peer.SimpleServiceProtocol {
    let clusterID: UInt64
    let localID: NodeID
    let inbox: any PeerInbox
    /// Where incoming snapshot images are written before the node installs them.
    let incomingDirectory: String
    let logger: Logger

    func sendMessages(
        request: RPCAsyncSequence<Kvdpb_MessageBatch, any Error>,
        context: ServerContext
    ) async throws -> Kvdpb_StreamSummary {
        var summary = Kvdpb_StreamSummary()
        for try await batch in request {
            try checkCluster(batch.clusterID, from: batch.from)
            let sender = NodeID(batch.from)
            if inbox.isRemoved(sender) {
                throw RPCError(code: .failedPrecondition, message: removedMessage)
            }
            guard inbox.isMember(sender) else {
                logger.warning("dropped messages from a member not in the cluster", metadata: ["from": "\(String(batch.from, radix: 16))"])
                continue
            }
            inbox.deliver(acceptedMessages(batch.messages, streamSender: sender))
            summary.batches += 1
        }
        return summary
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
        let answer = inbox.queryLease(request.id, renew: request.renew)
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

    /// Decodes one batch from `streamSender`'s stream, dropping (and logging) what must not reach Raft.
    ///
    /// A message normally comes from the member whose stream carries it. Forwarded proposals,
    /// ReadIndex requests and leader transfers keep their origin instead (the core answers the
    /// origin directly), and a member that has just lost leadership forwards such a message once
    /// more: those are accepted from any member of the cluster.
    func acceptedMessages(_ encodedMessages: [Data], streamSender: NodeID) -> [Message] {
        var messages: [Message] = []
        messages.reserveCapacity(encodedMessages.count)
        for encoded in encodedMessages {
            let message: Message
            do {
                message = try Message(decoding: Array(encoded))
            } catch {
                logger.error("dropped an undecodable peer message", metadata: ["from": "\(streamSender)", "error": "\(error)"])
                continue
            }
            let forwardable = message.type == .propose || message.type == .readIndex || message.type == .transferLeader
            guard message.from == streamSender || (forwardable && inbox.isMember(message.from)) else {
                logger.warning("dropped a message whose sender does not match its stream", metadata: [
                    "stream": "\(streamSender)", "from": "\(message.from)", "type": "\(message.type)",
                ])
                continue
            }
            messages.append(message)
        }
        return messages
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
