internal import Foundation
internal import Logging
internal import Raft
internal import Testing
@testable internal import Transport

/// An inbox that knows members 1, 2 and 3 and records nothing else.
private struct ThreeMembers: PeerInbox {
    func deliver(_ messages: [Message]) {}
    func deliverSnapshot(_ message: Message, imagePath: String) {}
    func isMember(_ id: NodeID) -> Bool { (1...3).contains(id.rawValue) }
    func isRemoved(_ id: NodeID) -> Bool { id.rawValue == 4 }
    func peerMembers() -> [PeerMemberInfo] { [] }
    func queryLease(_ id: Int64, renew: Bool) -> LeaseAnswer {
        LeaseAnswer(isLeader: false, found: false, ttlSeconds: 0, grantedTTLSeconds: 0)
    }
    func promoteMember(_ id: UInt64) async throws {}
}

@Suite struct PeerServiceTests {
    let service = PeerService(
        clusterID: 7, localID: NodeID(1), inbox: ThreeMembers(), incomingDirectory: "/nonexistent",
        logger: Logger(label: "test"))

    private func accepted(_ messages: [Message], on stream: UInt64) -> [Message] {
        service.acceptedMessages(messages.map { Data($0.encoded) }, streamSender: NodeID(stream))
    }

    @Test("a proposal forwarded twice keeps its origin and is accepted")
    func twiceForwardedProposal() {
        // Member 3 forwarded to 2, which had just lost leadership and forwarded on to 1.
        let proposal = Message(type: .propose, to: NodeID(1), from: NodeID(3), entries: [Entry(term: .zero, index: .zero, data: [1])])
        let readIndex = Message(type: .readIndex, to: NodeID(1), from: NodeID(3), context: [9])
        #expect(accepted([proposal, readIndex], on: 2) == [proposal, readIndex])
    }

    @Test("messages that speak for another member, or come from a non-member, are dropped")
    func spoofedMessagesDropped() {
        let append = Message(type: .append, to: NodeID(1), from: NodeID(3), term: Term(4))
        let vote = Message(type: .vote, to: NodeID(1), from: NodeID(3), term: Term(4))
        let fromStranger = Message(type: .propose, to: NodeID(1), from: NodeID(9))
        let own = Message(type: .heartbeatResponse, to: NodeID(1), from: NodeID(2), term: Term(4))
        #expect(accepted([append, vote, fromStranger, own], on: 2) == [own])
    }
}
