// The receiving end of a Raft stream (`Sources/Transport/RaftStream.swift`) against any bytes
// after an accepted hello: frames of any length and content are split, decoded or dropped, and
// handed to the inbox; an oversized frame closes the stream. With the first byte odd the hello
// itself is the input. Nothing may crash or trap.
internal import Logging
internal import NIOCore
internal import NIOEmbedded
internal import Raft
@testable internal import Transport

/// An inbox that knows members 1-3 and takes whatever it is given.
struct FuzzInbox: PeerInbox {
    func deliver(_ messages: [Message]) {}
    func deliverSnapshot(_ message: Message, imagePath: String) {}
    func isMember(_ id: NodeID) -> Bool { (1...3).contains(id.rawValue) }
    func isRemoved(_ id: NodeID) -> Bool { id.rawValue == 4 }
    func peerMembers() -> [PeerMemberInfo] { [] }
    func queryLease(_ id: Int64, renew: Bool) async throws -> LeaseAnswer { throw CancellationError() }
    func promoteMember(_ id: UInt64) async throws { throw CancellationError() }
    func hashKV(upTo revision: Int64) async throws -> PeerHashKV { throw CancellationError() }
}

let logger = Logger(label: "fuzz") { _ in SwiftLogNoOpLogHandler() }

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    guard let start, count > 0 else { return 0 }
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    let channel = EmbeddedChannel()
    do {
        try channel.pipeline.syncOperations.addHandlers([
            ByteToMessageHandler(RaftStreamDecoder()),
            RaftStreamReceiver(clusterID: 1, localID: NodeID(2), inbox: FuzzInbox(), logger: logger),
        ])
        var input = channel.allocator.buffer(capacity: count + 64)
        if bytes[0] % 2 == 0 {
            RaftStream.writeHello(RaftStream.Hello(clusterID: 1, from: NodeID(1), to: NodeID(2)), into: &input)
        } else {
            input.writeBytes(RaftStream.magic)
        }
        input.writeBytes(bytes.dropFirst())
        // Split in two reads, as a socket may deliver it.
        let cut = Int(bytes[0] / 2) % (input.readableBytes + 1)
        let first = input.readSlice(length: cut)!
        try channel.writeInbound(first)
        try channel.writeInbound(input)
    } catch {
        // Refusals (an oversized frame) close the stream: what a hostile peer gets.
    }
    _ = try? channel.finish()
    return 0
}
