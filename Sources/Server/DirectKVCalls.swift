internal import EtcdAPI
internal import GRPCCore
internal import NIOCore
internal import NIOHPACK
internal import NIOHTTP2
internal import Prometheus
internal import SwiftProtobuf

/// The client port's hot path: the KV service's writes (Put, DeleteRange, a Txn that writes) and
/// single-key Ranges, answered from the HTTP/2 stream on its connection's event loop; and the
/// Ranges over more keys that `LargeRange` serves in bounded memory from NIO's blocking pool.
///
/// Why: grpc-swift serves each call as a task on Swift's pool, fed through `NIOAsyncChannel`'s
/// async sequences: that machinery, the hand-offs between the pool and the event loops, and the
/// generic code behind them were about two thirds of a leader's CPU per put. Here a call is one
/// decode, the same checks, proposal and answer as `KVService`'s handlers (the node loop
/// completes a callback, not a continuation), and three frames written with one flush.
///
/// Only the plain case is served here: the four methods, an uncompressed request of exactly one
/// message within etcd's size limit, authentication off and no credentials sent. Anything else is
/// handed to a `BridgedCall` put behind this one (only then: the hot path's streams have no use
/// for it), the frames held so far replayed to it unchanged, so
/// that every other call (and every refusal the services make) is as before. A deadline
/// (`grpc-timeout`) is left to the client, as the services' handling of it cannot take back a
/// proposal either.
final class DirectKVCalls: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    /// What a direct call needs from the member: shared by every stream of a client URL.
    struct Service: Sendable {
        let kv: KVService
        let metrics: RequestMetrics
        let served: Counter
        let authEnabled: @Sendable () -> Bool
        /// Each method's counters, looked up in the registry once rather than per call.
        let counters: [Method: RequestMetrics.MethodCounters]

        init(kv: KVService, metrics: RequestMetrics, served: Counter, authEnabled: @escaping @Sendable () -> Bool) {
            self.kv = kv
            self.metrics = metrics
            self.served = served
            self.authEnabled = authEnabled
            counters = Dictionary(uniqueKeysWithValues: Method.allCases.map { ($0, metrics.counters(for: $0.descriptor)) })
        }
    }

    enum Method: CaseIterable {
        case range, put, deleteRange, txn

        var descriptor: MethodDescriptor {
            switch self {
            case .range: Etcdserverpb_KV.Method.Range.descriptor
            case .put: Etcdserverpb_KV.Method.Put.descriptor
            case .deleteRange: Etcdserverpb_KV.Method.DeleteRange.descriptor
            case .txn: Etcdserverpb_KV.Method.Txn.descriptor
            }
        }

        static let byPath: [String: Method] = Dictionary(uniqueKeysWithValues: allCases.map { ("/" + $0.descriptor.fullyQualifiedMethod, $0) })
    }

    private enum State {
        /// Before the request's headers.
        case idle
        /// A call this handler may serve: its frames so far (for a replay) and its body.
        case receiving(Method, held: [HTTP2Frame.FramePayload], body: ByteBuffer?)
        /// Served here: waiting for the answer, or answered.
        case serving
        /// The bridge's call: every frame goes on.
        case passing
    }

    /// The client port's HTTP endpoints (/health, /metrics, the JSON gateway...) for a stream
    /// that is not a gRPC call, as etcd's handler routes an HTTP/2 request by its content type.
    struct HTTPRoutes: Sendable {
        let endpoints: HTTPEndpoints
        /// Who is connected with which certificate (the gateway refuses a CN while auth is on).
        let identities: ClientIdentities
    }

    private let service: Service
    private let bridge: BridgedCall.Bridge
    private let http: HTTPRoutes?
    private let peer: String
    private let localPeer: String
    private var state = State.idle

    init(service: Service, bridge: BridgedCall.Bridge, http: HTTPRoutes?, peer: String, localPeer: String) {
        self.service = service
        self.bridge = bridge
        self.http = http
        self.peer = peer
        self.localPeer = localPeer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let payload = unwrapInboundIn(data)
        switch state {
        case .passing:
            context.fireChannelRead(data)
        case .serving:
            break  // nothing follows the request's end on a stream we serve but a reset
        case .idle:
            if case .headers(let headers) = payload, let http,
                !Self.isGRPC(contentType: headers.headers.first(name: "content-type"))
            {
                return passToHTTP(http, context: context, data: data)
            }
            if case .headers(let headers) = payload, let encoding = Self.unsupportedEncoding(headers.headers) {
                // grpc-go's refusal (etcd registers no decompressor), for every method.
                state = .serving
                return Answer.refuse(
                    RPCError(code: .unimplemented, message: "grpc: Decompressor is not installed for grpc-encoding \"\(encoding)\""),
                    context: context, handler: self)
            }
            guard case .headers(let headers) = payload, !headers.endStream, let method = Self.method(headers.headers, service) else {
                pass(context: context)
                return context.fireChannelRead(data)
            }
            state = .receiving(method, held: [payload], body: nil)
        case .receiving(let method, var held, var body):
            state = .serving  // `held` and `body` are now the only references: no copy on write
            held.append(payload)
            switch payload {
            case .data(let frame):
                guard case .byteBuffer(var bytes) = frame.data else { return replay(held, context: context) }
                if body == nil { body = bytes } else { body!.writeBuffer(&bytes) }
                guard frame.endStream, let body else { return state = .receiving(method, held: held, body: body) }
                if !serve(method, body: body, context: context) { replay(held, context: context) }
            case .headers:
                // Trailers from the client: not what a unary call sends.
                replay(held, context: context)
            default:
                // Window updates and the like, which the bridge ignores (a reset
                // closes the stream).
                state = .receiving(method, held: held, body: body)
            }
        }
    }

    /// The method when the headers ask for a call this handler serves.
    private static func method(_ headers: HPACKHeaders, _ service: Service) -> Method? {
        guard let path = headers.first(name: ":path"), let method = Method.byPath[path],
            headers.first(name: "content-type")?.hasPrefix("application/grpc") == true
        else { return nil }
        for (name, _, _) in headers {
            switch name {
            // Credentials are checked by grpc-swift's interceptors.
            case "token", "authorization": return nil
            default: continue
            }
        }
        return service.authEnabled() ? nil : method
    }

    /// Whether a request is gRPC's, as etcd tells them from its HTTP handlers on the same port: its
    /// content type contains `application/grpc`. Searched byte by byte: `String.contains(_:)` goes
    /// through the standard library's generic string searching, which was 3.9% of a leader's CPU
    /// at put 10/100.
    static func isGRPC(contentType: String?) -> Bool {
        guard var contentType else { return false }
        let marker: StaticString = "application/grpc"
        return contentType.withUTF8 { text in
            let needle = UnsafeBufferPointer(start: marker.utf8Start, count: marker.utf8CodeUnitCount)
            guard text.count >= needle.count else { return false }
            for start in 0...(text.count - needle.count) where text[start..<start + needle.count].elementsEqual(needle) {
                return true
            }
            return false
        }
    }

    /// A compression the request says its messages use: etcd's grpc-go has none but identity.
    private static func unsupportedEncoding(_ headers: HPACKHeaders) -> String? {
        guard let encoding = headers.first(name: "grpc-encoding"), encoding != "identity" else { return nil }
        return encoding
    }

    /// Hands the call to the bridge: every frame held, in order, as if this handler were not here.
    private func replay(_ held: [HTTP2Frame.FramePayload], context: ChannelHandlerContext) {
        pass(context: context)
        for payload in held { context.fireChannelRead(wrapInboundOut(payload)) }
        context.fireChannelReadComplete()
    }

    /// Puts the bridge behind this handler, which from now on passes every frame to it.
    private func pass(context: ChannelHandlerContext) {
        state = .passing
        do {
            try context.pipeline.syncOperations.addHandler(BridgedCall(bridge: bridge, peer: peer, localPeer: localPeer), position: .after(self))
        } catch {
            context.close(promise: nil)  // the stream is closing already
        }
    }

    /// An HTTP request on an HTTP/2 stream: HTTP/1's view of the stream, then the same handler
    /// as an HTTP/1.1 connection's.
    private func passToHTTP(_ http: HTTPRoutes, context: ChannelHandlerContext, data: NIOAny) {
        state = .passing
        do {
            try context.pipeline.syncOperations.addHandlers(
                [
                    HTTP2FramePayloadToHTTP1ServerCodec(),
                    HTTPEndpointHandler(endpoints: http.endpoints, clientCommonName: http.identities.commonName(of: peer)),
                ],
                position: .after(self))
        } catch {
            return context.close(promise: nil)  // the stream is closing already
        }
        context.fireChannelRead(data)
    }

    /// Serves the call; false (having done nothing) when its body is not one plain message
    /// within etcd's limit, or the request is one the bridge serves.
    private func serve(_ method: Method, body: ByteBuffer, context: ChannelHandlerContext) -> Bool {
        var body = body
        guard body.readableBytes >= 5, body.readInteger(as: UInt8.self) == 0, let length = body.readInteger(as: UInt32.self),
            Int(length) == body.readableBytes, body.readableBytes <= RequestDecoding.messageBytesMax,
            !service.authEnabled()
        else { return false }
        let eventLoop = context.eventLoop
        let answer = Answer(context: context, handler: self, method: method, metrics: service.metrics, counters: service.counters[method]!)
        let kv = service.kv
        switch method {
        case .range:
            guard let request: Etcdserverpb_RangeRequest = Self.decode(body) else { return false }
            if request.rangeEnd.isEmpty {
                started(method)
                kv.range(request, on: eventLoop, completion: answer.send)
            } else {
                guard LargeRange.serves(request) else { return false }
                started(method)
                kv.largeRange(request, on: eventLoop, stream: context.channel, completion: answer.send)
            }
        case .put:
            guard let request: Etcdserverpb_PutRequest = Self.decode(body) else { return false }
            started(method)
            kv.put(request, on: eventLoop, completion: answer.send)
        case .deleteRange:
            guard let request: Etcdserverpb_DeleteRangeRequest = Self.decode(body) else { return false }
            started(method)
            kv.deleteRange(request, on: eventLoop, completion: answer.send)
        case .txn:
            guard let request: Etcdserverpb_TxnRequest = Self.decode(body),
                kv.txn(request, on: eventLoop, completion: answer.send)
            else { return false }
            started(method)
        }
        return true
    }

    private func started(_ method: Method) {
        service.counters[method]!.started.increment()
        service.served.increment()
    }

    private static func decode<Request: SwiftProtobuf.Message>(_ body: ByteBuffer) -> Request? {
        body.withUnsafeReadableBytes { bytes in
            try? Request(serializedBytes: [UInt8](bytes), options: RequestDecoding.options)
        }
    }

    /// Writes one call's answer on its stream, on the stream's event loop, as grpc-swift writes a
    /// unary response: headers, the message, trailers; or trailers alone for an error.
    private struct Answer: @unchecked Sendable {
        // @unchecked: `context` and `handler` are used only on the stream's event loop (every
        // completion of the KV calls runs there).
        let context: ChannelHandlerContext
        let handler: DirectKVCalls
        let method: Method
        let metrics: RequestMetrics
        let counters: RequestMetrics.MethodCounters

        func send<Response: SwiftProtobuf.Message>(_ result: Result<Response, APIError>) {
            context.eventLoop.assertInEventLoop()
            let bytes: [UInt8]
            do {
                bytes = try result.get().serializedBytes()
            } catch let error as APIError {
                return fail(error.rpcError)
            } catch {
                return fail(RPCError(code: .internalError, message: "cannot encode response: \(error)"))
            }
            var message = context.channel.allocator.buffer(capacity: 5 + bytes.count)
            message.writeInteger(UInt8(0))
            message.writeInteger(UInt32(bytes.count))
            message.writeBytes(bytes)
            write(.headers(.init(headers: Self.responseHeaders)))
            write(.data(.init(data: .byteBuffer(message))))
            write(.headers(.init(headers: Self.okTrailers, endStream: true)))
            context.flush()
            counters.handledOK.increment()
        }

        /// A large range's answer: built (written here) or already written to the stream.
        func send(_ result: Result<LargeRange.Answer, APIError>) {
            switch result {
            case .success(.whole(let response)): send(Result<Etcdserverpb_RangeResponse, APIError>.success(response))
            case .success(.streamed): counters.handledOK.increment()
            case .failure(let error): send(Result<Etcdserverpb_RangeResponse, APIError>.failure(error))
            }
        }

        private func fail(_ error: RPCError) {
            Self.refuse(error, context: context, handler: handler)
            metrics.countHandled(method.descriptor, code: RequestMetrics.goName(error.code))
        }

        /// A status alone, in one HEADERS frame (gRPC's trailers-only response).
        static func refuse(_ error: RPCError, context: ChannelHandlerContext, handler: DirectKVCalls) {
            let trailers = GRPCStatusHeaders.trailersOnly(error)
            context.writeAndFlush(handler.wrapOutboundOut(.headers(.init(headers: trailers, endStream: true))), promise: nil)
        }

        private func write(_ payload: HTTP2Frame.FramePayload) {
            context.write(handler.wrapOutboundOut(payload), promise: nil)
        }

        private static let responseHeaders: HPACKHeaders = [":status": "200", "content-type": "application/grpc"]
        private static let okTrailers: HPACKHeaders = ["grpc-status": "0"]
    }
}
