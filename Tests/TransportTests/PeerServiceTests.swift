internal import Foundation
internal import Logging
internal import NIOCore
internal import NIOPosix
internal import Raft
internal import Synchronization
internal import Testing
@testable internal import Transport

/// An inbox that knows members 1, 2 and 3 (4 was removed) and records what it is given.
private final class ThreeMembers: PeerInbox {
    let delivered = Mutex<[Message]>([])
    func deliver(_ messages: [Message]) { delivered.withLock { $0.append(contentsOf: messages) } }
    func deliverSnapshot(_ message: Message, imagePath: String) {}
    func isMember(_ id: NodeID) -> Bool { (1...3).contains(id.rawValue) }
    func isRemoved(_ id: NodeID) -> Bool { id.rawValue == 4 }
    func peerMembers() -> [PeerMemberInfo] { [] }
    func queryLease(_ id: Int64, renew: Bool) -> LeaseAnswer {
        LeaseAnswer(isLeader: false, found: false, ttlSeconds: 0, grantedTTLSeconds: 0)
    }
    func promoteMember(_ id: UInt64) async throws {}
    func hashKV(upTo revision: Int64) async throws -> PeerHashKV {
        PeerHashKV(hash: 0, compactRevision: 0, revision: revision, memberID: 1)
    }
}

/// Records what a sending transport reports about the member it sends to.
private final class Reports: PeerStatusSink {
    private let unreachableCount = Atomic<Int>(0)
    private let removedFlag = Atomic<Bool>(false)
    var unreachable: Int { unreachableCount.load(ordering: .relaxed) }
    var removed: Bool { removedFlag.load(ordering: .relaxed) }
    func reportUnreachable(_ id: NodeID) { unreachableCount.add(1, ordering: .relaxed) }
    func reportSnapshot(to id: NodeID, failed: Bool) {}
    func reportRemoved() { removedFlag.store(true, ordering: .relaxed) }
}

/// A member that accepts the Raft stream and then stops reading it (a stalled process).
private final class StalledReceiver: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
        var answer = context.channel.allocator.buffer(capacity: 1)
        answer.writeInteger(RaftStream.Status.accepted.rawValue)
        context.writeAndFlush(wrapOutboundOut(answer), promise: nil)
    }
}

@Suite struct PeerServiceTests {
    private func accepted(_ messages: [Message], on stream: UInt64) -> [Message] {
        RaftStream.accepted(messages, streamSender: NodeID(stream), inbox: ThreeMembers(), logger: Logger(label: "test"))
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

/// The Raft stream over real loopback sockets: member 1 serves its peer port, and a sending
/// transport (member `from` of cluster `clusterID`) streams to it.
@Suite struct RaftStreamTests {
    // Below Linux's ephemeral range (32768-60999): a port there can be taken at any moment by an
    // outgoing connection of another suite running in parallel, and the stream then never connects.
    private static let nextPort = Atomic<Int>(Int.random(in: 20_000..<32_000))

    private struct Pair {
        let inbox = ThreeMembers()
        let reports = Reports()
        let sender: PeerTransport
        let tasks: [Task<Void, Never>]

        init(from: UInt64, clusterID: UInt64) {
            let port = RaftStreamTests.nextPort.add(1, ordering: .relaxed).newValue
            let address = PeerAddress(isTLS: false, host: "127.0.0.1", port: port)
            let logger = Logger(label: "test")
            let receiver = PeerTransport(localID: NodeID(1), clusterID: 7, tls: nil, status: Reports(), logger: logger)
            sender = PeerTransport(localID: NodeID(from), clusterID: clusterID, tls: nil, status: reports, logger: logger)
            sender.setPeer(NodeID(1), addresses: [address])
            let inbox = self.inbox, sender = self.sender
            tasks = [
                Task { try? await receiver.serve(on: [address], inbox: inbox, incomingDirectory: "/nonexistent") },
                Task { await sender.runSenders() },
            ]
        }

        func stop() { for task in tasks { task.cancel() } }

        /// Waits up to 60 s for `done` (other suites may keep the task pool busy).
        func wait(until done: () -> Bool) async {
            for _ in 0..<1_200 where !done() { try? await Task.sleep(for: .milliseconds(50)) }
        }
    }

    private static func heartbeat(_ index: UInt64, from: UInt64) -> Message {
        Message(type: .heartbeat, to: NodeID(1), from: NodeID(from), term: Term(2), commit: LogIndex(index))
    }

    @Test("messages arrive once each, in the order they were sent, across many writes")
    func inOrder() async {
        let pair = Pair(from: 2, clusterID: 7)
        defer { pair.stop() }
        // Sent before the stream connects (held) and after it (written straight onto it).
        for index in 0..<50 { pair.sender.send([Self.heartbeat(UInt64(index), from: 2)]) }
        await pair.wait { pair.inbox.delivered.withLock { !$0.isEmpty } }
        for batch in stride(from: 50, to: 1_000, by: 50) {
            pair.sender.send((batch..<batch + 50).map { Self.heartbeat(UInt64($0), from: 2) })
        }
        await pair.wait { pair.inbox.delivered.withLock { $0.count >= 1_000 } }
        let commits = pair.inbox.delivered.withLock { $0.map(\.commit.rawValue) }
        #expect(commits == Array(0..<1_000))
    }

    @Test("a stream from another cluster is refused: nothing is delivered, the sender reports the member unreachable")
    func otherCluster() async {
        let pair = Pair(from: 2, clusterID: 8)
        defer { pair.stop() }
        pair.sender.send([Self.heartbeat(1, from: 2)])
        // Several attempts, backing off: the later ones reach the listening member.
        await pair.wait { pair.reports.unreachable >= 4 }
        pair.sender.send([Self.heartbeat(2, from: 2)])
        #expect(pair.reports.unreachable >= 4)
        #expect(pair.inbox.delivered.withLock { $0.isEmpty })
    }

    @Test("a removed member's stream is refused and the sender learns it was removed")
    func removedMember() async {
        let pair = Pair(from: 4, clusterID: 7)
        defer { pair.stop() }
        pair.sender.send([Self.heartbeat(1, from: 4)])
        await pair.wait { pair.reports.removed }
        #expect(pair.reports.removed)
        #expect(pair.inbox.delivered.withLock { $0.isEmpty })
    }

    @Test("a member that stops reading fills its stream: messages are dropped and it is reported unreachable, nothing blocks")
    func stalledMember() async throws {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(StalledReceiver()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { server.close(promise: nil) }
        let reports = Reports()
        let sender = PeerTransport(localID: NodeID(2), clusterID: 7, tls: nil, status: reports, logger: Logger(label: "test"))
        sender.setPeer(NodeID(1), addresses: [PeerAddress(isTLS: false, host: "127.0.0.1", port: server.localAddress!.port!)])
        let task = Task { await sender.runSenders() }
        defer { task.cancel() }
        for _ in 0..<1_200 where sender.activeSince(NodeID(1)) == nil { try await Task.sleep(for: .milliseconds(50)) }
        #expect(sender.activeSince(NodeID(1)) != nil, "the stream opened")

        // 64 KiB appends until the stream reports the member unreachable: the kernel's socket
        // buffers and the connection's 8 MiB write buffer take a few hundred, 4,000 are 256 MiB.
        let payload = [UInt8](repeating: 7, count: 64 * 1024)
        var sent = 0
        while sent < 4_000 && reports.unreachable == 0 {
            let entry = Entry(term: Term(2), index: LogIndex(UInt64(sent + 1)), data: payload)
            sender.send([Message(type: .append, to: NodeID(1), from: NodeID(2), term: Term(2), entries: [entry])])
            sent += 1
            // Let the event loop take the writes, so that the write buffer's level is current.
            if sent % 16 == 0 { try await Task.sleep(for: .milliseconds(1)) }
        }
        #expect(reports.unreachable > 0, "dropped after \(sent) appends")
        #expect(sent * payload.count >= PeerSender.writeBufferBytesMax, "not before the write buffer was full")
        #expect(sender.activeSince(NodeID(1)) != nil, "the stream stays open: a slow member is not a dead one")
    }
}
