internal import Foundation
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

    struct Response: Sendable {
        var status: HTTPResponseStatus
        var contentType: String
        var body: [UInt8]
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
            let keys = (try? store.readView().range({
                var request = RangeRequest(range: .from([0]))
                request.countOnly = true
                return request
            }()).count) ?? 0
            let body = metrics.render(facts: facts, databaseBytes: loop.database.approximateSizeBytes(), keys: keys)
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
        try await withTaskCancellationHandler {
            try await channel.closeFuture.get()
        } onCancel: {
            channel.close(promise: nil)
        }
    }
}

/// Answers the HTTP/1.1 requests of one connection (after NIO's HTTP/1.1 server handlers) with
/// `HTTPEndpoints`. On the client port the gRPC handlers come after this one: they get no
/// requests, and their writes (connection management) are dropped.
final class HTTPEndpointHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = IOData
    typealias OutboundOut = HTTPServerResponsePart

    private let endpoints: HTTPEndpoints
    private var head: HTTPRequestHead?

    init(endpoints: HTTPEndpoints) {
        self.endpoints = endpoints
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let requestHead):
            head = requestHead
        case .body:
            break
        case .end:
            guard let request = head else { return }
            head = nil
            // /health waits for a linearizable read: answered from a task, written back on the
            // connection's event loop (HTTPServerPipelineHandler holds later requests until then).
            let endpoints = self.endpoints
            let answered = context.eventLoop.makePromise(of: HTTPEndpoints.Response.self)
            answered.completeWithTask { await endpoints.respond(method: request.method, path: request.uri) }
            answered.futureResult.assumeIsolated().whenSuccess { Self.write($0, to: request, context: context) }
        }
    }

    private static func write(_ response: HTTPEndpoints.Response, to request: HTTPRequestHead, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: response.contentType)
        headers.add(name: "Content-Length", value: String(response.body.count))
        if !request.isKeepAlive { headers.add(name: "Connection", value: "close") }
        let head = HTTPResponseHead(version: request.version, status: response.status, headers: headers)
        context.write(NIOAny(HTTPServerResponsePart.head(head)), promise: nil)
        context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(bytes: response.body)))), promise: nil)
        let written = context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)))
        if !request.isKeepAlive {
            written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        promise?.succeed(())
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
