internal import Logging
internal import NIOCore
internal import Raft

/// Raft messages between members travel on the peer port as a stream of length-prefixed frames
/// (one connection per direction, as etcd's stream transport has), not as gRPC calls: the node
/// loop writes a Ready's messages straight onto the connection and the receiving event loop hands
/// them straight to the node loop, with no hop through Swift's task pool and no HTTP/2 or gRPC
/// framing on either side (measured in the commit that introduced it).
///
/// The sender opens with `magic`, then a hello (cluster ID, sender, receiver: 8 bytes each, big
/// endian); the receiver answers one status byte and, unless it accepted, closes. After that the
/// sender writes frames, each a 4-byte big-endian length and one `Message.encoded`.
enum RaftStream {
    static let magic = Array("KVDRAFT\u{1}".utf8)
    static let helloLength = 24
    /// Bytes of one encoded message, at most. A larger frame closes the connection.
    static let frameBytesMax = 12 * 1024 * 1024

    enum Status: UInt8 {
        case accepted = 0
        case otherCluster = 1
        /// The sender was removed from the cluster: it must stop (etcd answers 410 Gone).
        case removed = 2
        case notMember = 3
        /// The hello names another member as the receiver.
        case wrongReceiver = 4
    }

    struct Hello: Equatable {
        var clusterID: UInt64
        var from: NodeID
        var to: NodeID
    }

    static func writeHello(_ hello: Hello, into buffer: inout ByteBuffer) {
        buffer.writeBytes(magic)
        buffer.writeInteger(hello.clusterID)
        buffer.writeInteger(hello.from.rawValue)
        buffer.writeInteger(hello.to.rawValue)
    }

    /// The frames of `messages`, in order, in one buffer (one write).
    static func frames(_ messages: [Message], allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 256 * messages.count)
        for message in messages {
            let encoded = message.encoded
            buffer.writeInteger(UInt32(encoded.count))
            buffer.writeBytes(encoded)
        }
        return buffer
    }

    /// Whether the first bytes of a connection are this protocol's, as `ProtocolSniffer.matches` answers.
    static func matches(_ seen: ByteBufferView) -> Bool? {
        ProtocolSniffer.matches(seen, prefix: magic)
    }

    /// Keeps what may reach Raft from one stream's messages, dropping (and logging) the rest.
    ///
    /// A message normally comes from the member whose stream carries it. Forwarded proposals,
    /// ReadIndex requests and leader transfers keep their origin instead (the core answers the
    /// origin directly), and a member that has just lost leadership forwards such a message once
    /// more: those are accepted from any member of the cluster.
    static func accepted(_ messages: [Message], streamSender: NodeID, inbox: any PeerInbox, logger: Logger) -> [Message] {
        messages.filter { message in
            let forwardable = message.type == .propose || message.type == .readIndex || message.type == .transferLeader
            guard message.from == streamSender || (forwardable && inbox.isMember(message.from)) else {
                logger.warning("dropped a message whose sender does not match its stream", metadata: [
                    "stream": "\(streamSender)", "from": "\(message.from)", "type": "\(message.type)",
                ])
                return false
            }
            return true
        }
    }
}

/// What a Raft stream's receiving side reads: the hello once, then one message per frame.
enum RaftStreamPart {
    case hello(RaftStream.Hello)
    case message([UInt8])
}

struct RaftStreamTooLarge: Error, CustomStringConvertible {
    var bytes: Int
    var description: String { "kvd: a Raft message frame of \(bytes) bytes exceeds \(RaftStream.frameBytesMax)" }
}

/// Splits the receiving side's bytes into the hello and the frames.
struct RaftStreamDecoder: ByteToMessageDecoder {
    typealias InboundOut = RaftStreamPart
    private var helloSeen = false

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if !helloSeen {
            guard buffer.readableBytes >= RaftStream.magic.count + RaftStream.helloLength else { return .needMoreData }
            buffer.moveReaderIndex(forwardBy: RaftStream.magic.count)  // the sniffer has checked it
            let clusterID = buffer.readInteger(as: UInt64.self)!
            let from = buffer.readInteger(as: UInt64.self)!
            let to = buffer.readInteger(as: UInt64.self)!
            helloSeen = true
            context.fireChannelRead(wrapInboundOut(.hello(RaftStream.Hello(clusterID: clusterID, from: NodeID(from), to: NodeID(to)))))
            return .continue
        }
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return .needMoreData }
        guard length <= RaftStream.frameBytesMax else { throw RaftStreamTooLarge(bytes: Int(length)) }
        guard buffer.readableBytes >= 4 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        context.fireChannelRead(wrapInboundOut(.message(buffer.readBytes(length: Int(length))!)))
        return .continue
    }
}

/// The receiving side of one member's Raft stream: checks the hello, then decodes each read's
/// frames and hands them to the inbox as one delivery (one node-loop wake-up per read).
final class RaftStreamReceiver: ChannelInboundHandler {
    typealias InboundIn = RaftStreamPart
    typealias OutboundOut = ByteBuffer

    private let clusterID: UInt64
    private let localID: NodeID
    private let inbox: any PeerInbox
    private let logger: Logger
    private var sender: NodeID?
    private var pending: [Message] = []

    init(clusterID: UInt64, localID: NodeID, inbox: any PeerInbox, logger: Logger) {
        self.clusterID = clusterID
        self.localID = localID
        self.inbox = inbox
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .hello(let hello):
            let status = check(hello)
            var answer = context.channel.allocator.buffer(capacity: 1)
            answer.writeInteger(status.rawValue)
            context.writeAndFlush(wrapOutboundOut(answer), promise: nil)
            if status == .accepted {
                sender = hello.from
            } else {
                context.close(promise: nil)
            }
        case .message(let bytes):
            guard let sender else { return }  // refused: the connection is closing
            do {
                pending.append(try Message(decoding: bytes))
            } catch {
                logger.error("dropped an undecodable peer message", metadata: ["from": "\(sender)", "error": "\(error)"])
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        defer { context.fireChannelReadComplete() }
        guard let sender, !pending.isEmpty else { return }
        let messages = pending
        pending.removeAll(keepingCapacity: true)
        if inbox.isRemoved(sender) {
            // Removed while connected: the sender learns it from the hello of its next connection.
            context.close(promise: nil)
            return
        }
        let accepted = RaftStream.accepted(messages, streamSender: sender, inbox: inbox, logger: logger)
        if !accepted.isEmpty { inbox.deliver(accepted) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.warning("closed a Raft stream", metadata: ["from": "\(sender.map { "\($0)" } ?? "?")", "error": "\(error)"])
        context.close(promise: nil)
    }

    private func check(_ hello: RaftStream.Hello) -> RaftStream.Status {
        let metadata: Logger.Metadata = ["from": "\(String(hello.from.rawValue, radix: 16))"]
        if hello.clusterID != clusterID {
            logger.error("refused a peer of another cluster", metadata: metadata.merging([
                "remote-cluster-id": "\(String(hello.clusterID, radix: 16))", "local-cluster-id": "\(String(clusterID, radix: 16))",
            ]) { $1 })
            return .otherCluster
        }
        if hello.to != localID {
            logger.warning("refused a Raft stream meant for another member", metadata: metadata.merging(["to": "\(hello.to)"]) { $1 })
            return .wrongReceiver
        }
        if inbox.isRemoved(hello.from) { return .removed }
        guard inbox.isMember(hello.from) else {
            logger.warning("refused a Raft stream from a member not in the cluster", metadata: metadata)
            return .notMember
        }
        return .accepted
    }
}

/// The sending side's reader: the receiver's status byte, then nothing (anything more is ignored).
final class RaftStreamStatusReader: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let status: EventLoopPromise<UInt8>
    private var answered = false

    init(status: EventLoopPromise<UInt8>) {
        self.status = status
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard !answered, let byte = bytes.readInteger(as: UInt8.self) else { return }
        answered = true
        status.succeed(byte)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !answered { status.fail(ChannelError.ioOnClosedChannel) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !answered {
            answered = true
            status.fail(error)
        }
        context.close(promise: nil)
    }
}
