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

/// etcd's HTTP endpoints on `--listen-metrics-urls` (how kubeadm's liveness probes and
/// Prometheus reach etcd): `/health`, `/livez`, `/readyz`, `/version` and `/metrics`.
/// gRPC keeps the client port to itself.
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

    /// Serves plain HTTP/1.1 on `url` until cancelled.
    func serve(host: String, port: Int) async throws {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: host == "localhost" ? "127.0.0.1" : host, port: port) { child in
                child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.configureHTTPServerPipeline()
                    return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(wrappingChannelSynchronously: child)
                }
            }
        logger.info("ready to serve HTTP endpoints", metadata: ["address": "\(host):\(port)"])
        try await withThrowingDiscardingTaskGroup { group in
            try await channel.executeThenClose { connections in
                for try await connection in connections {
                    group.addTask { await self.handle(connection) }
                }
            }
        }
    }

    private func handle(_ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>) async {
        do {
            try await connection.executeThenClose { inbound, outbound in
                var head: HTTPRequestHead?
                for try await part in inbound {
                    switch part {
                    case .head(let requestHead):
                        head = requestHead
                    case .body:
                        break
                    case .end:
                        guard let request = head else { continue }
                        let response = await respond(method: request.method, path: request.uri)
                        var headers = HTTPHeaders()
                        headers.add(name: "Content-Type", value: response.contentType)
                        headers.add(name: "Content-Length", value: String(response.body.count))
                        let keepAlive = request.isKeepAlive
                        if !keepAlive { headers.add(name: "Connection", value: "close") }
                        try await outbound.write(.head(HTTPResponseHead(version: request.version, status: response.status, headers: headers)))
                        try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: response.body))))
                        try await outbound.write(.end(nil))
                        if !keepAlive { return }
                        head = nil
                    }
                }
            }
        } catch {
            logger.debug("HTTP connection ended", metadata: ["error": "\(error)"])
        }
    }
}
