internal import EtcdAPI
internal import Foundation
internal import GRPCCore
internal import NIOCore
internal import NIOHPACK
internal import NIOHTTP2
internal import Synchronization

/// The client port's calls that `DirectKVCalls` does not answer, carried from their HTTP/2 stream
/// to the member's gRPC services, which `BridgeTransport` serves.
///
/// Why: the client port's HTTP/2 is kvd's own (`ClientListener`), so the hot path's streams cost
/// a child channel and `DirectKVCalls` alone; grpc-swift's HTTP/2 transport gave every stream an
/// async channel and a task before a handler saw its first frame, direct or not: 28% of the
/// members' CPU per put at 10 connections / 100 clients. The calls that come here (watches,
/// leases, lists, maintenance, auth, the cluster) are served by the same services and
/// interceptors, as grpc-swift's server runs them for any transport: one task per call.
///
/// One handler per stream, after `DirectKVCalls`: it sees the frames of the calls that handler
/// passes on, checks the request headers as etcd's grpc-go does, turns gRPC's length-prefixed
/// messages into request parts (yielded from the event loop, no task in between), and the call's
/// response parts go back as HTTP/2 frames through `ResponseWriter`, which holds the handler to
/// a few writes ahead of its socket.
final class BridgedCall: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload
    typealias Requests = AsyncThrowingStream<RPCRequestPart<[UInt8]>, any Error>

    /// What every bridged stream of a client port shares.
    struct Bridge: Sendable {
        let transport: BridgeTransport
        /// The size beyond which a request message is refused as it arrives (four times etcd's
        /// limit, which the request decoders check): a stream's memory stays bounded.
        let messageBytesMax: Int
        /// The services' methods ("service/method") and services, for grpc-go's refusal of others.
        let methods: Set<String>
        let services: Set<String>

        init(transport: BridgeTransport, messageBytesMax: Int, serving: [any RegistrableRPCService]) {
            self.transport = transport
            self.messageBytesMax = messageBytesMax
            var router = RPCRouter<BridgeTransport>()
            for service in serving { service.registerMethods(with: &router) }
            methods = Set(router.methods.map(\.fullyQualifiedMethod))
            services = Set(router.methods.map(\.service.fullyQualifiedService))
        }
    }

    private enum State {
        case idle
        /// The call runs: request parts go to `requests`.
        case open(requests: Requests.Continuation)
        /// The request side has ended (half-closed, refused or failed).
        case requestsEnded
    }

    private let bridge: Bridge
    /// The client connection's name as gRPC gives it (`ServerContext.remotePeer`): the auth
    /// interceptor looks a certificate's common name up by it.
    private let peer: String
    private let localPeer: String
    private var state = State.idle
    /// Bytes of a request message not yet complete.
    private var unframed: ByteBuffer?
    private var writer: ResponseWriter?
    private var cancellation: CallCancellation?

    init(bridge: Bridge, peer: String, localPeer: String) {
        self.bridge = bridge
        self.peer = peer
        self.localPeer = localPeer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let payload = unwrapInboundIn(data)
        switch (state, payload) {
        case (.idle, .headers(let headers)):
            start(headers.headers, endStream: headers.endStream, context: context)
        case (.open(let requests), .data(let frame)):
            guard case .byteBuffer(var bytes) = frame.data else { return }
            if unframed == nil { unframed = bytes } else { unframed!.writeBuffer(&bytes) }
            if !deframe(into: requests, context: context) { return }
            if frame.endStream { endRequests() }
        case (.open, .headers(let trailers)):
            // A client's trailers end its requests (gRPC sends none, but they are legal).
            if trailers.endStream { endRequests() }
        default:
            break  // window updates, frames after the request side ended
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        // Closed or reset by the client: the call is cancelled, as grpc-swift's transports cancel it.
        if case .open(let requests) = state { requests.finish(throwing: CancellationError()) }
        state = .requestsEnded
        cancellation?.cancel()
        context.fireChannelInactive()
    }

    private func endRequests() {
        if case .open(let requests) = state { requests.finish() }
        state = .requestsEnded
    }

    /// Cuts complete messages off `unframed`; false when the call was refused for a bad one.
    private func deframe(into requests: Requests.Continuation, context: ChannelHandlerContext) -> Bool {
        while var buffer = unframed, buffer.readableBytes >= 5 {
            let compressed = buffer.readInteger(as: UInt8.self)!
            let length = Int(buffer.readInteger(as: UInt32.self)!)
            if compressed != 0 {
                refuse(RPCError(code: .internalError, message: "Invalid compression flag."), context: context)
                return false
            }
            if length > bridge.messageBytesMax {
                // grpc-go's words, with etcd's limit (the decoders refuse what lies between).
                let limit = RequestDecoding.messageBytesMax
                refuse(RPCError(code: .resourceExhausted, message: "grpc: received message larger than max (\(length) vs. \(limit))"), context: context)
                return false
            }
            guard let message = buffer.readBytes(length: length) else { return true }  // incomplete
            requests.yield(.message(message))
            unframed = buffer.readableBytes > 0 ? buffer : nil
        }
        return true
    }

    /// Checks the request headers (as etcd's grpc-go checks them) and starts the call.
    private func start(_ headers: HPACKHeaders, endStream: Bool, context: ChannelHandlerContext) {
        state = .requestsEnded
        guard let contentType = headers.first(name: "content-type"), contentType.hasPrefix("application/grpc") else {
            // Not gRPC: grpc-go resets the stream (and, like it, the method and scheme go unchecked).
            context.writeAndFlush(wrapOutboundOut(.rstStream(.protocolError)), promise: nil)
            return
        }
        // grpc-go's reading of the path: an optional leading '/', then service and method
        // split at the last '/'.
        let path = headers.first(name: ":path") ?? ""
        let name = path.hasPrefix("/") ? path.dropFirst() : Substring(path)
        guard let slash = name.lastIndex(of: "/") else {
            return refuse(RPCError(code: .resourceExhausted, message: "malformed method name: \"\(path)\""), context: context)
        }
        let service = String(name[..<slash]), method = String(name[name.index(after: slash)...])
        guard bridge.methods.contains("\(service)/\(method)") else {
            let message = bridge.services.contains(service) ? "unknown method \(method) for service \(service)" : "unknown service \(service)"
            return refuse(RPCError(code: .unimplemented, message: message), context: context)
        }
        guard let handler = bridge.transport.handler else {
            return refuse(RPCError(code: .unavailable, message: "transport is closing"), context: context)
        }
        let descriptor = MethodDescriptor(fullyQualifiedService: service, method: method)
        var metadata = Metadata()
        metadata.reserveCapacity(headers.count)
        for (name, value, _) in headers {
            // A client's claim to name another connection is not the bridge's to pass on.
            if name == AuthInterceptor.forwardedPeerKey { continue }
            if name.hasSuffix("-bin"), let bytes = Self.base64Decoded(value) {
                metadata.addBinary(bytes, forKey: name)
            } else {
                metadata.addString(value, forKey: name)
            }
        }

        let (requests, continuation) = Requests.makeStream()
        continuation.yield(.metadata(metadata))
        state = .open(requests: continuation)
        if endStream { endRequests() }
        let writer = ResponseWriter(channel: context.channel)
        let cancellation = CallCancellation()
        self.writer = writer
        self.cancellation = cancellation
        let stream = RPCStream(
            descriptor: descriptor, inbound: RPCAsyncSequence(wrapping: requests), outbound: RPCWriter.Closable(wrapping: writer))
        let (peer, localPeer) = (self.peer, self.localPeer)
        Task {
            await withServerContextRPCCancellationHandle { handle in
                cancellation.started(handle)
                await handler(stream, ServerContext(descriptor: descriptor, remotePeer: peer, localPeer: localPeer, cancellation: handle))
            }
            writer.resetUnlessEnded()
        }
    }

    /// Ends the call with `error`: a status alone, in one HEADERS frame (gRPC's trailers-only
    /// response), or, once the call's handler has sent its headers, a reset stream.
    private func refuse(_ error: RPCError, context: ChannelHandlerContext) {
        if case .open(let requests) = state { requests.finish(throwing: error) }
        state = .requestsEnded
        cancellation?.cancel()
        if writer?.headersWereSent == true { return context.close(promise: nil) }
        let headers = GRPCStatusHeaders.trailersOnly(error)
        context.writeAndFlush(wrapOutboundOut(.headers(.init(headers: headers, endStream: true))), promise: nil)
    }

    private static func base64Decoded(_ value: String) -> [UInt8]? {
        // gRPC may send binary metadata unpadded.
        var padded = value
        while padded.utf8.count % 4 != 0 { padded += "=" }
        return Data(base64Encoded: padded).map { [UInt8]($0) }
    }
}

/// Writes a bridged call's response parts on its HTTP/2 stream, from the call's task.
fileprivate final class ResponseWriter: ClosableRPCWriterProtocol {
    typealias Element = RPCResponsePart<[UInt8]>

    /// Writes a call may have under way (HTTP/2's flow control holds a write until the client's
    /// window has room): beyond them the call's task waits, so a `Snapshot` or a watch to a slow
    /// client waits on the client instead of filling memory.
    static let writesAhead = 8

    let channel: any Channel
    private struct Progress {
        var headersSent = false
        var ended = false
        var writesUnderWay = 0
    }
    private let progress = Mutex(Progress())
    var headersWereSent: Bool { progress.withLock { $0.headersSent } }

    init(channel: any Channel) {
        self.channel = channel
    }

    func write(_ part: Element) async throws {
        let payload: HTTP2Frame.FramePayload
        switch part {
        case .metadata(let metadata):
            var headers = HPACKHeaders([(":status", "200"), ("content-type", "application/grpc")])
            GRPCStatusHeaders.add(metadata, to: &headers)
            payload = .headers(.init(headers: headers))
            progress.withLock { $0.headersSent = true }
        case .message(let bytes):
            var buffer = channel.allocator.buffer(capacity: 5 + bytes.count)
            buffer.writeInteger(UInt8(0))
            buffer.writeInteger(UInt32(bytes.count))
            buffer.writeBytes(bytes)
            payload = .data(.init(data: .byteBuffer(buffer)))
        case .status(let status, let metadata):
            let trailersOnly = progress.withLock { progress in
                progress.ended = true
                return !progress.headersSent
            }
            payload = .headers(.init(headers: GRPCStatusHeaders.trailers(status, metadata, trailersOnly: trailersOnly), endStream: true))
        }
        let full = progress.withLock { progress in
            progress.writesUnderWay += 1
            return progress.writesUnderWay > Self.writesAhead
        }
        let written = channel.eventLoop.makePromise(of: Void.self)
        channel.writeAndFlush(payload, promise: written)
        written.futureResult.whenComplete { _ in self.progress.withLock { $0.writesUnderWay -= 1 } }
        if full { try await written.futureResult.get() }
    }

    func write(contentsOf elements: some Sequence<Element>) async throws {
        for element in elements { try await write(element) }
    }

    func finish() async {}

    func finish(throwing error: any Error) async {
        resetUnlessEnded()
    }

    /// A call that ended without its status (cancelled) ends its stream with RST_STREAM CANCEL.
    func resetUnlessEnded() {
        if !progress.withLock({ $0.ended }) { channel.close(promise: nil) }
    }
}

/// A gRPC response's status as HTTP/2 headers, for the direct calls and the bridge alike.
enum GRPCStatusHeaders {
    /// The trailers ending a call; with `trailersOnly` (nothing sent before them) also the
    /// response headers, in the one HEADERS frame.
    static func trailers(_ status: Status, _ metadata: Metadata, trailersOnly: Bool) -> HPACKHeaders {
        var headers = HPACKHeaders()
        if trailersOnly {
            headers.add(name: ":status", value: "200")
            headers.add(name: "content-type", value: "application/grpc")
        }
        headers.add(name: "grpc-status", value: String(status.code.rawValue))
        if !status.message.isEmpty {
            headers.add(name: "grpc-message", value: percentEncoded(status.message))
        }
        add(metadata, to: &headers)
        return headers
    }

    /// A refusal: `error` as the whole response.
    static func trailersOnly(_ error: RPCError) -> HPACKHeaders {
        trailers(Status(code: Status.Code(error.code), message: error.message), [:], trailersOnly: true)
    }

    static func add(_ metadata: Metadata, to headers: inout HPACKHeaders) {
        for (key, value) in metadata {
            switch value {
            case .string(let string): headers.add(name: key, value: string)
            case .binary(let bytes): headers.add(name: key, value: Data(bytes).base64EncodedString())
            }
        }
    }

    /// grpc-message's encoding (gRPC over HTTP/2): bytes outside printable ASCII, and '%', as %XX.
    static func percentEncoded(_ message: String) -> String {
        var out = ""
        for byte in message.utf8 {
            if byte >= 0x20 && byte <= 0x7E && byte != UInt8(ascii: "%") {
                out.unicodeScalars.append(UnicodeScalar(byte))
            } else {
                out += (byte < 0x10 ? "%0" : "%") + String(byte, radix: 16, uppercase: true)
            }
        }
        return out
    }
}

/// A bridged call's cancellation: the client's reset reaches the call's handle, set once its task
/// has started (a reset that comes first cancels it as it is set).
private final class CallCancellation: Sendable {
    private let state = Mutex<(handle: ServerContext.RPCCancellationHandle?, cancelled: Bool)>((nil, false))

    func started(_ handle: ServerContext.RPCCancellationHandle) {
        let cancelled = state.withLock { state in
            state.handle = handle
            return state.cancelled
        }
        if cancelled { handle.cancel() }
    }

    func cancel() {
        let handle = state.withLock { state in
            state.cancelled = true
            return state.handle
        }
        handle?.cancel()
    }
}

/// The services' side of the bridge: a gRPC server transport whose streams are the client port's
/// bridged HTTP/2 streams. `GRPCServer` listens on it as on any transport; `BridgedCall` starts
/// each call with the handler it registered.
final class BridgeTransport: ServerTransport {
    typealias Bytes = [UInt8]
    typealias Handler = @Sendable (RPCStream<Inbound, Outbound>, ServerContext) async -> Void

    private enum State {
        case idle
        case listening(Handler)
        case stopped
    }

    private let state = Mutex(State.idle)
    private let stop = AsyncStream<Void>.makeStream()

    init() {}

    /// The handler of a listening server; nil before it listens and once it stops.
    var handler: Handler? {
        state.withLock { state in
            if case .listening(let handler) = state { return handler }
            return nil
        }
    }

    func listen(streamHandler: @escaping Handler) async throws {
        state.withLock { state in
            if case .idle = state { state = .listening(streamHandler) }
        }
        for await _ in stop.stream {}  // until shutdown (or cancellation)
        state.withLock { $0 = .stopped }
    }

    func beginGracefulShutdown() {
        state.withLock { $0 = .stopped }
        stop.continuation.finish()
    }
}
