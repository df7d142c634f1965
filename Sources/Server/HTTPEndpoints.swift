internal import Foundation
internal import GRPCCore
internal import Logging
internal import MVCC
internal import NIOCore
internal import NIOHTTP1
internal import NIOPosix
internal import Prometheus
internal import Raft
internal import Storage
internal import Synchronization

/// etcd's HTTP endpoints, `/health`, `/livez`, `/readyz`, `/version` and `/metrics`: on the
/// client port beside gRPC (`ClientListener`) and on `--listen-metrics-urls` (how kubeadm's
/// liveness probes and Prometheus reach etcd).
struct HTTPEndpoints: Sendable {
    let loop: NodeLoop
    let store: MVCCStore
    let metrics: NodeMetrics
    let logger: Logger
    /// etcd's JSON gateway (`/v3/...`): on the client port unless `--enable-grpc-gateway=false`,
    /// never on the metrics port.
    var gateway: JSONGateway?

    struct Response: Sendable {
        var status: HTTPResponseStatus
        var contentType: String
        var body: [UInt8]
        /// etcd sends its CORS headers with every gateway answer.
        var cors = false
    }

    /// etcd's `checkHealth`: unhealthy with an active alarm, without a leader, or when a
    /// linearizable read does not complete within a second.
    func health() async -> (healthy: Bool, reason: String) {
        let (leader, alarms) = loop.facts.withLock { ($0.leader, $0.membership.alarms) }
        if let alarm = alarms.first { return (false, "alarm \(alarm.description)") }
        if leader == NodeID.none { return (false, "no leader") }
        // The read cannot be cancelled (it ends at the request timeout): race it against one
        // second and let a late one finish on its own.
        let (outcomes, outcome) = AsyncStream<String?>.makeStream()
        Task {
            do {
                try await loop.waitForReadIndex()
                outcome.yield(nil)
            } catch {
                outcome.yield("linearizable read failed: \(error)")
            }
        }
        Task {
            try? await Task.sleep(for: .seconds(1))
            outcome.yield("linearizable read took over 1s")
        }
        for await failure in outcomes {
            outcome.finish()
            return (failure == nil, failure ?? "")
        }
        return (false, "stopped")
    }

    func respond(method: HTTPMethod, path: String) async -> Response {
        let path = path.split(separator: "?", maxSplits: 1).first.map(String.init) ?? path
        switch path {
        case "/health":
            guard method == .GET else { return Response(status: .methodNotAllowed, contentType: "text/plain; charset=utf-8", body: Array("Method Not Allowed\n".utf8)) }
            let (healthy, reason) = await health()
            if healthy {
                metrics.healthSuccess.increment()
                return Response(status: .ok, contentType: "text/plain; charset=utf-8", body: Array(#"{"health":"true"}"#.utf8))
            }
            metrics.healthFailures.increment()
            logger.warning("/health error", metadata: ["reason": "\(reason)"])
            // etcd answers through http.Error: the JSON, a newline, status 503.
            return Response(status: .serviceUnavailable, contentType: "text/plain; charset=utf-8", body: Array("{\"health\":\"false\"}\n".utf8))
        case "/livez":
            return Response(status: .ok, contentType: "text/plain; charset=utf-8", body: Array("ok".utf8))
        case "/readyz":
            let (healthy, _) = await health()
            return healthy
                ? Response(status: .ok, contentType: "text/plain; charset=utf-8", body: Array("ok".utf8))
                : Response(status: .serviceUnavailable, contentType: "text/plain; charset=utf-8", body: Array("not ready\n".utf8))
        case "/version":
            let body = "{\"etcdserver\":\"\(MaintenanceService.etcdVersion)\",\"etcdcluster\":\"\(MaintenanceService.clusterVersion)\"}"
            return Response(status: .ok, contentType: "application/json", body: Array(body.utf8))
        case "/metrics":
            let facts = loop.facts.withLock { $0 }
            // Counted without a Range, which the mvcc metrics would count as a client's.
            let view = store.readView()
            let keys = (try? view.count(.from([0]), at: view.current)) ?? 0
            let body = metrics.render(
                facts: facts, databaseBytes: loop.database.approximateSizeBytes(of: NodeLoop.stateFamilies), keys: Int64(keys), operations: store.operations.current)
            return Response(status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8", body: body)
        default:
            return Response(status: .notFound, contentType: "text/plain; charset=utf-8", body: Array("404 page not found\n".utf8))
        }
    }

    /// Serves plain HTTP/1.1 on `host:port` (`--listen-metrics-urls`) until cancelled.
    func serve(host: String, port: Int) async throws {
        let endpoints = self
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try child.pipeline.syncOperations.addHandler(HTTPEndpointHandler(endpoints: endpoints))
                }
            }
            .bind(host: host == "localhost" ? "127.0.0.1" : host, port: port).get()
        logger.info("ready to serve HTTP endpoints", metadata: ["address": "\(host):\(port)"])
        try await channel.closedOrCancelled()
    }
}

extension Channel {
    /// A listener's life: it serves until it closes, and cancelling the task that waits closes it
    /// (after `onCancel`, which may end what the listener accepted).
    func closedOrCancelled(onCancel: @escaping @Sendable () -> Void = {}) async throws {
        try await withTaskCancellationHandler {
            try await closeFuture.get()
        } onCancel: {
            close(promise: nil)
            onCancel()
        }
    }
}

/// Answers the HTTP/1.1 requests of one connection (after NIO's HTTP/1.1 server handlers) with
/// `HTTPEndpoints` and, on the client port, etcd's JSON gateway. On the client port the gRPC
/// handlers come after this one: they get no requests, and their writes (connection management)
/// are dropped.
final class HTTPEndpointHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = IOData
    typealias OutboundOut = HTTPServerResponsePart

    /// What the request being read will get once it has ended (or, for the gateway, as its body
    /// arrives).
    private enum Pending {
        case endpoint(HTTPRequestHead)
        case fixed(HTTPRequestHead, HTTPEndpoints.Response)
        case gateway(GatewayExchange)
    }

    /// A gateway call under way: its body, cut into JSON values as it arrives, feeds the call.
    private final class GatewayExchange {
        var splitter = JSONValueSplitter()
        var bodyBytes = 0
        let values: AsyncThrowingStream<[UInt8], any Error>.Continuation
        var task: Task<Void, Never>?

        init(values: AsyncThrowingStream<[UInt8], any Error>.Continuation) {
            self.values = values
        }
    }

    private let endpoints: HTTPEndpoints
    /// The common name of the client's verified certificate, if it has one.
    private let clientCommonName: String?
    private var pending: Pending?
    private var running: GatewayExchange?

    init(endpoints: HTTPEndpoints, clientCommonName: String? = nil) {
        self.endpoints = endpoints
        self.clientCommonName = clientCommonName
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let requestHead):
            pending = decide(requestHead, context: context)
        case .body(let buffer):
            guard case .gateway(let exchange) = pending else { return }
            exchange.bodyBytes += buffer.readableBytes
            if exchange.bodyBytes > JSONGateway.bodyBytesMax {
                // As the gRPC transport refuses a message over its limit.
                exchange.values.finish(throwing: RPCError(
                    code: .resourceExhausted,
                    message: "grpc: received message larger than max (\(exchange.bodyBytes) vs. \(JSONGateway.bodyBytesMax))"))
                return
            }
            for value in exchange.splitter.feed(buffer.readableBytesView) { exchange.values.yield(value) }
        case .end:
            guard let request = pending else { return }
            pending = nil
            switch request {
            case .endpoint(let head):
                // /health waits for a linearizable read: answered from a task, written back on the
                // connection's event loop (HTTPServerPipelineHandler holds later requests until then).
                let endpoints = self.endpoints
                let answered = context.eventLoop.makePromise(of: HTTPEndpoints.Response.self)
                answered.completeWithTask { await endpoints.respond(method: head.method, path: head.uri) }
                answered.futureResult.assumeIsolated().whenSuccess { Self.write($0, to: head, context: context) }
            case .fixed(let head, let response):
                Self.write(response, to: head, context: context)
            case .gateway(let exchange):
                if let rest = exchange.splitter.finish() { exchange.values.yield(rest) }
                exchange.values.finish()
            }
        }
    }

    private func decide(_ head: HTTPRequestHead, context: ChannelHandlerContext) -> Pending {
        guard endpoints.gateway != nil else { return .endpoint(head) }
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        // etcd: with authentication on, a gateway call from a certificate that names a user is
        // refused, since the gateway's own call cannot carry that name.
        if let clientCommonName, !clientCommonName.isEmpty, JSONGateway.prefixes.contains(where: { path.hasPrefix($0) }),
           endpoints.loop.authEnabled.load(ordering: .relaxed) {
            return .fixed(head, HTTPEndpoints.Response(
                status: .badRequest, contentType: "text/plain; charset=utf-8",
                body: Array("CommonName of client sending a request against gateway will be ignored and not used as expected\n".utf8)))
        }
        switch JSONGateway.route(method: head.method.rawValue, path: path) {
        case .failure(.notGateway):
            return .endpoint(head)
        case .failure(.notFound):
            return .fixed(head, HTTPEndpoints.Response(
                status: .notFound, contentType: "text/plain; charset=utf-8", body: Array("Not Found\n".utf8), cors: true))
        case .failure(.methodNotAllowed):
            // A browser's preflight gets the CORS headers etcd sends on every gateway answer.
            if head.method == .OPTIONS {
                return .fixed(head, HTTPEndpoints.Response(status: .ok, contentType: "text/plain; charset=utf-8", body: [], cors: true))
            }
            return .fixed(head, HTTPEndpoints.Response(
                status: .methodNotAllowed, contentType: "text/plain; charset=utf-8", body: Array("Method Not Allowed\n".utf8),
                cors: true))
        case .success(let route):
            let (values, continuation) = AsyncThrowingStream<[UInt8], any Error>.makeStream()
            let exchange = GatewayExchange(values: continuation)
            let responder = GatewayResponder(context: context, request: head)
            let gateway = endpoints.gateway!
            // grpc-gateway passes the Authorization header on as gRPC metadata (etcd's token).
            let authorization = head.headers.first(name: "authorization")
            exchange.task = Task {
                await JSONGateway.$authorization.withValue(authorization) {
                    await gateway.serve(route, requests: values, responder: responder)
                }
            }
            running = exchange
            return .gateway(exchange)
        }
    }

    static func write(_ response: HTTPEndpoints.Response, to request: HTTPRequestHead, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        if response.cors { JSONGateway.addCORSHeaders(&headers) }
        headers.add(name: "Content-Type", value: response.contentType)
        headers.add(name: "Content-Length", value: String(response.body.count))
        if request.closesConnection { headers.add(name: "Connection", value: "close") }
        let head = HTTPResponseHead(version: request.version, status: response.status, headers: headers)
        context.write(NIOAny(HTTPServerResponsePart.head(head)), promise: nil)
        context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(bytes: response.body)))), promise: nil)
        let written = context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)))
        if request.closesConnection {
            written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        promise?.succeed(())
    }

    func channelInactive(context: ChannelHandlerContext) {
        // A client that goes away ends its gateway call (a watch would otherwise run on).
        running?.values.finish()
        running?.task?.cancel()
        running = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Writes one gateway answer onto its connection from the task that runs the call: every write
/// hops to the connection's event loop, in order.
struct GatewayResponder: Sendable {
    private let context: NIOLoopBound<ChannelHandlerContext>
    private let eventLoop: any EventLoop
    private let request: NIOLoopBound<HTTPRequestHead>

    init(context: ChannelHandlerContext, request: HTTPRequestHead) {
        self.context = NIOLoopBound(context, eventLoop: context.eventLoop)
        self.eventLoop = context.eventLoop
        self.request = NIOLoopBound(request, eventLoop: context.eventLoop)
    }

    /// A whole answer with its length.
    func respond(status: Int, body: [UInt8]) {
        eventLoop.execute { [context, request] in
            HTTPEndpointHandler.write(
                HTTPEndpoints.Response(
                    status: HTTPResponseStatus(statusCode: status), contentType: "application/json", body: body, cors: true),
                to: request.value, context: context.value)
        }
    }

    /// The head of a streamed answer: chunked, status 200.
    func startStream() {
        eventLoop.execute { [context, request] in
            var headers = HTTPHeaders()
            JSONGateway.addCORSHeaders(&headers)
            headers.add(name: "Content-Type", value: "application/json")
            let head = HTTPResponseHead(version: request.value.version, status: .ok, headers: headers)
            context.value.writeAndFlush(NIOAny(HTTPServerResponsePart.head(head)), promise: nil)
        }
    }

    func streamLine(_ line: [UInt8]) {
        eventLoop.execute { [context] in
            context.value.writeAndFlush(NIOAny(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(bytes: line)))), promise: nil)
        }
    }

    func endStream() {
        eventLoop.execute { [context, request] in
            let written = context.value.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)))
            if request.value.closesConnection {
                written.assumeIsolated().whenComplete { _ in context.value.close(promise: nil) }
            }
        }
    }
}

extension HTTPRequestHead {
    /// Whether the answer ends the connection: an HTTP/1 request without keep-alive. (HTTP/2
    /// requests are streams of a connection that stays; NIO calls them not keep-alive.)
    var closesConnection: Bool { version.major == 1 && !isKeepAlive }
}
