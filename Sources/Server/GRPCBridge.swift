internal import EtcdAPI
internal import Foundation
internal import GRPCCore
internal import GRPCInProcessTransport
internal import NIOCore
internal import NIOHPACK
internal import NIOHTTP2
internal import Synchronization

/// The client port's calls that `DirectKVCalls` does not answer, carried from their HTTP/2 stream
/// to the member's gRPC services through the in-process transport.
///
/// Why: the client port's HTTP/2 is kvd's own (`ClientListener`), so the hot path's streams cost
/// a child channel and `DirectKVCalls` alone; grpc-swift's HTTP/2 transport gave every stream an
/// async channel and a task before a handler saw its first frame, direct or not: 28% of the
/// members' CPU per put at 10 connections / 100 clients. The calls that come here (watches,
/// leases, lists, maintenance, auth, the cluster) are served exactly as before by the same
/// services and interceptors, as grpc-swift's server serves the in-process transport.
///
/// One handler per stream, after `DirectKVCalls`: it sees the frames of the calls that handler
/// passes on, checks the request headers as grpc-swift's transport did, turns gRPC's
/// length-prefixed messages into request parts, and writes the response parts back as HTTP/2
/// frames. The response side is paced (`BridgePacing`): the in-process transport buffers
/// without bound, so a call may have only a few messages written ahead of its socket.
final class BridgedCall: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    /// What every bridged stream of a client port shares.
    struct Bridge: Sendable {
        let client: InProcessTransport.Client
        /// The size beyond which a request message is refused as it arrives (four times etcd's
        /// limit, which the request decoders check): a stream's memory stays bounded.
        let messageBytesMax: Int
        /// The services' methods ("service/method") and services, for grpc-go's refusal of others.
        let methods: Set<String>
        let services: Set<String>

        init(client: InProcessTransport.Client, messageBytesMax: Int, serving: [any RegistrableRPCService]) {
            self.client = client
            self.messageBytesMax = messageBytesMax
            var router = RPCRouter<InProcessTransport.Server>()
            for service in serving { service.registerMethods(with: &router) }
            methods = Set(router.methods.map(\.fullyQualifiedMethod))
            services = Set(router.methods.map(\.service.fullyQualifiedService))
        }
    }

    private enum State {
        case idle
        /// The call runs: request messages go to `requests`.
        case open(requests: AsyncThrowingStream<[UInt8], any Error>.Continuation)
        /// The request side has ended (half-closed, refused or failed).
        case requestsEnded
    }

    private let bridge: Bridge
    /// The client connection's name as gRPC gives it (`ServerContext.remotePeer`), for the auth
    /// interceptor: a certificate's common name is looked up by it.
    private let peer: String
    private var state = State.idle
    /// Bytes of a request message not yet complete.
    private var unframed: ByteBuffer?
    private var call: Task<Void, Never>?
    private var writer: ResponseWriter?

    init(bridge: Bridge, peer: String) {
        self.bridge = bridge
        self.peer = peer
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
        // Closed or reset by the client: the call is cancelled, as grpc-swift cancels it.
        if case .open(let requests) = state { requests.finish(throwing: CancellationError()) }
        state = .requestsEnded
        call?.cancel()
        context.fireChannelInactive()
    }

    private func endRequests() {
        if case .open(let requests) = state { requests.finish() }
        state = .requestsEnded
    }

    /// Cuts complete messages off `unframed`; false when the call was refused for a bad one.
    private func deframe(into requests: AsyncThrowingStream<[UInt8], any Error>.Continuation, context: ChannelHandlerContext) -> Bool {
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
            requests.yield(message)
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
        let descriptor = MethodDescriptor(fullyQualifiedService: service, method: method)
        var metadata = Metadata()
        metadata.reserveCapacity(headers.count + 2)
        for (name, value, _) in headers {
            // The caller's connection is the bridge's to name; a client's own claim is dropped.
            if name == AuthInterceptor.forwardedPeerKey || name == BridgePacing.key { continue }
            if name.hasSuffix("-bin"), let bytes = Self.base64Decoded(value) {
                metadata.addBinary(bytes, forKey: name)
            } else {
                metadata.addString(value, forKey: name)
            }
        }
        metadata.addString(peer, forKey: AuthInterceptor.forwardedPeerKey)
        let credit = BridgePacing.register()
        metadata.addString(credit.key, forKey: BridgePacing.key)

        let (requests, continuation) = AsyncThrowingStream<[UInt8], any Error>.makeStream()
        state = .open(requests: continuation)
        if endStream { endRequests() }
        let writer = ResponseWriter(channel: context.channel, credit: credit)
        self.writer = writer
        let client = bridge.client
        call = Task { [metadata] in
            defer { BridgePacing.unregister(credit) }
            do {
                try await client.withStream(descriptor: descriptor, options: .defaults) { stream, _ in
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask {
                            try await stream.outbound.write(.metadata(metadata))
                            for try await message in requests { try await stream.outbound.write(.message(message)) }
                            await stream.outbound.finish()
                        }
                        for try await part in stream.inbound {
                            try await writer.write(part)
                        }
                        // The status is written: requests still coming are no longer wanted.
                        group.cancelAll()
                    }
                }
            } catch is CancellationError {
                writer.reset()
            } catch let error as RPCError {
                try? await writer.write(.status(Status(code: Status.Code(error.code), message: error.message), error.metadata))
            } catch {
                try? await writer.write(.status(Status(code: .unknown, message: "\(error)"), [:]))
            }
        }
    }

    /// Ends the call with `error`: a status alone, in one HEADERS frame (gRPC's trailers-only
    /// response), or, once the call's handler has sent its headers, a reset stream.
    private func refuse(_ error: RPCError, context: ChannelHandlerContext) {
        if case .open(let requests) = state { requests.finish(throwing: error) }
        state = .requestsEnded
        call?.cancel()
        if writer?.headersWereSent == true { return context.close(promise: nil) }
        let headers = ResponseWriter.trailers(Status(code: Status.Code(error.code), message: error.message), [:], trailersOnly: true)
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
fileprivate final class ResponseWriter: Sendable {
    let channel: any Channel
    let credit: BridgePacing.Credit

    /// Written once the previous write has reached the connection (HTTP/2's flow control holds
    /// a write until the client's window has room), so the call's messages leave at the pace
    /// the client reads them.
    func write(_ part: RPCResponsePart<[UInt8]>) async throws {
        let payload: HTTP2Frame.FramePayload
        switch part {
        case .metadata(let metadata):
            var headers = HPACKHeaders([(":status", "200"), ("content-type", "application/grpc")])
            Self.add(metadata, to: &headers)
            payload = .headers(.init(headers: headers))
            headersSent.withLock { $0 = true }
        case .message(let bytes):
            var buffer = channel.allocator.buffer(capacity: 5 + bytes.count)
            buffer.writeInteger(UInt8(0))
            buffer.writeInteger(UInt32(bytes.count))
            buffer.writeBytes(bytes)
            payload = .data(.init(data: .byteBuffer(buffer)))
        case .status(let status, let metadata):
            let trailersOnly = !headersSent.withLock { $0 }
            payload = .headers(.init(headers: Self.trailers(status, metadata, trailersOnly: trailersOnly), endStream: true))
        }
        defer { if case .message = part { credit.release() } }
        try await channel.writeAndFlush(payload)
    }

    /// Ends the stream without a status (RST_STREAM CANCEL), as a cancelled call's stream ends.
    func reset() {
        channel.close(promise: nil)
    }

    private let headersSent = Mutex(false)
    var headersWereSent: Bool { headersSent.withLock { $0 } }

    init(channel: any Channel, credit: BridgePacing.Credit) {
        self.channel = channel
        self.credit = credit
    }

    static func trailers(_ status: Status, _ metadata: Metadata, trailersOnly: Bool) -> HPACKHeaders {
        var headers = HPACKHeaders()
        if trailersOnly {
            headers.add(name: ":status", value: "200")
            headers.add(name: "content-type", value: "application/grpc")
        }
        headers.add(name: "grpc-status", value: String(status.code.rawValue))
        if !status.message.isEmpty {
            headers.add(name: "grpc-message", value: DirectKVCalls.percentEncoded(status.message))
        }
        add(metadata, to: &headers)
        return headers
    }

    private static func add(_ metadata: Metadata, to headers: inout HPACKHeaders) {
        for (key, value) in metadata {
            switch value {
            case .string(let string): headers.add(name: key, value: string)
            case .binary(let bytes): headers.add(name: key, value: Data(bytes).base64EncodedString())
            }
        }
    }
}

/// Holds a bridged call's response producer to a few messages ahead of its socket: the
/// in-process transport's response stream never makes a writer wait, so without this a
/// `Snapshot` or a watch to a slow client would buffer in memory without bound.
struct BridgePacing: ServerInterceptor {
    /// The metadata naming a bridged call's credit; set by the bridge only (a client's own is dropped).
    static let key = "kvd-bridged-call"
    /// Messages a call may have written and not yet on its stream.
    static let window = 8

    final class Credit: Sendable {
        let key: String
        private let state = Mutex<(available: Int, waiting: [CheckedContinuation<Void, Never>])>((BridgePacing.window, []))

        init(key: String) { self.key = key }

        func acquire() async {
            await withCheckedContinuation { continuation in
                let ready = state.withLock { state in
                    if state.available > 0 {
                        state.available -= 1
                        return true
                    }
                    state.waiting.append(continuation)
                    return false
                }
                if ready { continuation.resume() }
            }
        }

        func release() {
            let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
                if !state.waiting.isEmpty { return state.waiting.removeFirst() }
                state.available += 1
                return nil
            }
            next?.resume()
        }

        /// The call is over: nothing waits any more.
        func close() {
            let waiting = state.withLock { state in
                defer { state = (Int.max / 2, []) }
                return state.waiting
            }
            for continuation in waiting { continuation.resume() }
        }
    }

    private static let credits = Mutex<(next: UInt64, byKey: [String: Credit])>((0, [:]))

    static func register() -> Credit {
        credits.withLock { credits in
            credits.next += 1
            let credit = Credit(key: String(credits.next))
            credits.byKey[credit.key] = credit
            return credit
        }
    }

    static func unregister(_ credit: Credit) {
        _ = credits.withLock { $0.byKey.removeValue(forKey: credit.key) }
        credit.close()
    }

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        guard context.remotePeer.hasPrefix("in-process"), let key = request.metadata[stringValues: Self.key].first(where: { _ in true }),
            let credit = Self.credits.withLock({ $0.byKey[key] })
        else { return try await next(request, context) }
        var response = try await next(request, context)
        if case .success(var contents) = response.accepted {
            let producer = contents.producer
            contents.producer = { writer in try await producer(RPCWriter(wrapping: PacedWriter(base: writer, credit: credit))) }
            response = StreamingServerResponse(accepted: .success(contents))
        }
        return response
    }

    private struct PacedWriter<Element: Sendable>: RPCWriterProtocol {
        let base: RPCWriter<Element>
        let credit: Credit

        func write(_ element: Element) async throws {
            await credit.acquire()
            try await base.write(element)
        }

        func write(contentsOf elements: some Sequence<Element>) async throws {
            for element in elements { try await write(element) }
        }
    }
}
