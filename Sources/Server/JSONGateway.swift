internal import EtcdAPI
internal import GRPCCore
internal import GRPCInProcessTransport
internal import GRPCProtobuf
internal import NIOHTTP1
internal import SwiftProtobuf
internal import Synchronization

/// etcd's gRPC-JSON gateway: `POST /v3/kv/range` with `{"key":"Zm9v"}` and the rest of etcd's
/// `/v3/...` (and etcd 3.4's `/v3beta/...`) paths, as curl, patroni and OpenStack's etcd3gw use
/// them. Like etcd's, the gateway is a gRPC client of the member's own services: each request is
/// decoded from JSON, called through an in-process transport (so the same checks, interceptors
/// and error statuses apply) and the answer encoded back in grpc-gateway's JSON: proto field
/// names, 64-bit integers as strings, bytes in base64, default values left out.
package struct JSONGateway: Sendable {
    let client: GRPCClient<InProcessTransport.Client>
    /// With `--max-concurrent-streams`: etcd's gateway is one gRPC connection to its member, so
    /// the limit bounds all gateway calls together, and one over it waits for another to end.
    let streams: StreamPermits?

    /// One gateway path: how its request body becomes calls and its answers JSON.
    struct Route: Sendable {
        /// Streaming routes answer with one `{"result":...}` line per message, chunked.
        let streamsResponses: Bool
        /// Takes the request body's JSON values, emits each encoded answer.
        let serve: @Sendable (
            _ client: GRPCClient<InProcessTransport.Client>, _ requests: AsyncThrowingStream<[UInt8], any Error>,
            _ emit: @escaping @Sendable ([UInt8]) async -> Void
        ) async throws -> Void
    }

    /// The answer to a path the gateway does not serve with POST.
    enum Miss: Error, Equatable {
        /// Not a gateway path: the HTTP endpoints decide.
        case notGateway
        /// Under `/v3/` but no such method: grpc-gateway's 404.
        case notFound
        /// A gateway path asked with another method than POST.
        case methodNotAllowed
    }

    static let prefixes = ["/v3/", "/v3beta/"]

    /// The HTTP request's Authorization header (an auth token), for the call's metadata.
    @TaskLocal static var authorization: String?

    private static var metadata: Metadata {
        var metadata = Metadata()
        if let authorization { metadata.addString(authorization, forKey: "authorization") }
        return metadata
    }

    /// The most request body one call takes: the client port's gRPC limit (a larger body could
    /// not become one message anyway).
    static var bodyBytesMax: Int { 4 * RequestDecoding.messageBytesMax }

    /// Runs one gateway call and writes its answer: a unary answer (or a failure before anything
    /// was streamed) as one JSON body with grpc-gateway's status, a stream as chunked lines.
    func serve(_ route: Route, requests: AsyncThrowingStream<[UInt8], any Error>, responder: GatewayResponder) async {
        await streams?.acquire()
        await call(route, requests: requests, responder: responder)
        await streams?.release()
    }

    private func call(_ route: Route, requests: AsyncThrowingStream<[UInt8], any Error>, responder: GatewayResponder) async {
        let streaming = Mutex(false)
        do {
            try await route.serve(client, requests) { json in
                guard route.streamsResponses else { return responder.respond(status: 200, body: json) }
                if !streaming.withLock({ started in defer { started = true }; return started }) { responder.startStream() }
                responder.streamLine(json)
            }
            if route.streamsResponses {
                if !streaming.withLock({ $0 }) { responder.startStream() }
                responder.endStream()
            }
        } catch {
            let failure = error as? RPCError ?? RPCError(code: .unknown, message: "\(error)")
            if streaming.withLock({ $0 }) {
                responder.streamLine(Self.streamErrorLine(failure))
                responder.endStream()
            } else {
                responder.respond(status: Self.httpStatus(failure.code), body: Self.errorBody(failure))
            }
        }
    }

    static func addCORSHeaders(_ headers: inout HTTPHeaders) {
        headers.add(name: "Access-Control-Allow-Headers", value: "accept, content-type, authorization")
        headers.add(name: "Access-Control-Allow-Methods", value: "POST, GET, OPTIONS, PUT, DELETE")
        headers.add(name: "Access-Control-Allow-Origin", value: "*")
    }

    /// The route for `path` asked with `method`, or why there is none.
    static func route(method: String, path: String) -> Result<Route, Miss> {
        guard let prefix = prefixes.first(where: { path.hasPrefix($0) }) else { return .failure(.notGateway) }
        guard let route = routes[String(path.dropFirst(prefix.count))] else { return .failure(.notFound) }
        return method == "POST" ? .success(route) : .failure(.methodNotAllowed)
    }

    /// etcd 3.5's gateway paths (its `*.pb.gw.go`), below `/v3/`.
    static let routes: [String: Route] = {
        typealias KV = Etcdserverpb_KV.Method
        typealias Lease = Etcdserverpb_Lease.Method
        typealias Cluster = Etcdserverpb_Cluster.Method
        typealias Maintenance = Etcdserverpb_Maintenance.Method
        typealias Auth = Etcdserverpb_Auth.Method
        var table: [String: Route] = [
            "kv/range": unary(KV.Range.Input.self, KV.Range.Output.self, KV.Range.descriptor),
            "kv/put": unary(KV.Put.Input.self, KV.Put.Output.self, KV.Put.descriptor),
            "kv/deleterange": unary(KV.DeleteRange.Input.self, KV.DeleteRange.Output.self, KV.DeleteRange.descriptor),
            "kv/txn": unary(KV.Txn.Input.self, KV.Txn.Output.self, KV.Txn.descriptor),
            "kv/compaction": unary(KV.Compact.Input.self, KV.Compact.Output.self, KV.Compact.descriptor),
            "watch": streaming(
                Etcdserverpb_Watch.Method.Watch.Input.self, Etcdserverpb_Watch.Method.Watch.Output.self,
                Etcdserverpb_Watch.Method.Watch.descriptor),
            "lease/grant": unary(Lease.LeaseGrant.Input.self, Lease.LeaseGrant.Output.self, Lease.LeaseGrant.descriptor),
            "lease/keepalive": streaming(
                Lease.LeaseKeepAlive.Input.self, Lease.LeaseKeepAlive.Output.self, Lease.LeaseKeepAlive.descriptor),
            "cluster/member/add": unary(Cluster.MemberAdd.Input.self, Cluster.MemberAdd.Output.self, Cluster.MemberAdd.descriptor),
            "cluster/member/remove": unary(
                Cluster.MemberRemove.Input.self, Cluster.MemberRemove.Output.self, Cluster.MemberRemove.descriptor),
            "cluster/member/update": unary(
                Cluster.MemberUpdate.Input.self, Cluster.MemberUpdate.Output.self, Cluster.MemberUpdate.descriptor),
            "cluster/member/list": unary(Cluster.MemberList.Input.self, Cluster.MemberList.Output.self, Cluster.MemberList.descriptor),
            "cluster/member/promote": unary(
                Cluster.MemberPromote.Input.self, Cluster.MemberPromote.Output.self, Cluster.MemberPromote.descriptor),
            "maintenance/alarm": unary(Maintenance.Alarm.Input.self, Maintenance.Alarm.Output.self, Maintenance.Alarm.descriptor),
            "maintenance/status": unary(Maintenance.Status.Input.self, Maintenance.Status.Output.self, Maintenance.Status.descriptor),
            "maintenance/defragment": unary(
                Maintenance.Defragment.Input.self, Maintenance.Defragment.Output.self, Maintenance.Defragment.descriptor),
            // etcd's gateway maps Hash and HashKV to the same path; Hash is registered first and wins.
            "maintenance/hash": unary(Maintenance.Hash.Input.self, Maintenance.Hash.Output.self, Maintenance.Hash.descriptor),
            "maintenance/snapshot": streaming(
                Maintenance.Snapshot.Input.self, Maintenance.Snapshot.Output.self, Maintenance.Snapshot.descriptor),
            "maintenance/transfer-leadership": unary(
                Maintenance.MoveLeader.Input.self, Maintenance.MoveLeader.Output.self, Maintenance.MoveLeader.descriptor),
            "auth/enable": unary(Auth.AuthEnable.Input.self, Auth.AuthEnable.Output.self, Auth.AuthEnable.descriptor),
            "auth/disable": unary(Auth.AuthDisable.Input.self, Auth.AuthDisable.Output.self, Auth.AuthDisable.descriptor),
            "auth/status": unary(Auth.AuthStatus.Input.self, Auth.AuthStatus.Output.self, Auth.AuthStatus.descriptor),
            "auth/authenticate": unary(Auth.Authenticate.Input.self, Auth.Authenticate.Output.self, Auth.Authenticate.descriptor),
            "auth/user/add": unary(Auth.UserAdd.Input.self, Auth.UserAdd.Output.self, Auth.UserAdd.descriptor),
            "auth/user/get": unary(Auth.UserGet.Input.self, Auth.UserGet.Output.self, Auth.UserGet.descriptor),
            "auth/user/list": unary(Auth.UserList.Input.self, Auth.UserList.Output.self, Auth.UserList.descriptor),
            "auth/user/delete": unary(Auth.UserDelete.Input.self, Auth.UserDelete.Output.self, Auth.UserDelete.descriptor),
            "auth/user/changepw": unary(
                Auth.UserChangePassword.Input.self, Auth.UserChangePassword.Output.self, Auth.UserChangePassword.descriptor),
            "auth/user/grant": unary(Auth.UserGrantRole.Input.self, Auth.UserGrantRole.Output.self, Auth.UserGrantRole.descriptor),
            "auth/user/revoke": unary(Auth.UserRevokeRole.Input.self, Auth.UserRevokeRole.Output.self, Auth.UserRevokeRole.descriptor),
            "auth/role/add": unary(Auth.RoleAdd.Input.self, Auth.RoleAdd.Output.self, Auth.RoleAdd.descriptor),
            "auth/role/get": unary(Auth.RoleGet.Input.self, Auth.RoleGet.Output.self, Auth.RoleGet.descriptor),
            "auth/role/list": unary(Auth.RoleList.Input.self, Auth.RoleList.Output.self, Auth.RoleList.descriptor),
            "auth/role/delete": unary(Auth.RoleDelete.Input.self, Auth.RoleDelete.Output.self, Auth.RoleDelete.descriptor),
            "auth/role/grant": unary(
                Auth.RoleGrantPermission.Input.self, Auth.RoleGrantPermission.Output.self, Auth.RoleGrantPermission.descriptor),
            "auth/role/revoke": unary(
                Auth.RoleRevokePermission.Input.self, Auth.RoleRevokePermission.Output.self, Auth.RoleRevokePermission.descriptor),
        ]
        typealias Lock = V3lockpb_Lock.Method
        typealias Election = V3electionpb_Election.Method
        table["lock/lock"] = unary(Lock.Lock.Input.self, Lock.Lock.Output.self, Lock.Lock.descriptor)
        table["lock/unlock"] = unary(Lock.Unlock.Input.self, Lock.Unlock.Output.self, Lock.Unlock.descriptor)
        table["election/campaign"] = unary(Election.Campaign.Input.self, Election.Campaign.Output.self, Election.Campaign.descriptor)
        table["election/proclaim"] = unary(Election.Proclaim.Input.self, Election.Proclaim.Output.self, Election.Proclaim.descriptor)
        table["election/leader"] = unary(Election.Leader.Input.self, Election.Leader.Output.self, Election.Leader.descriptor)
        table["election/observe"] = streaming(Election.Observe.Input.self, Election.Observe.Output.self, Election.Observe.descriptor)
        table["election/resign"] = unary(Election.Resign.Input.self, Election.Resign.Output.self, Election.Resign.descriptor)
        // The lease paths etcd also serves under kv/.
        table["lease/revoke"] = unary(Lease.LeaseRevoke.Input.self, Lease.LeaseRevoke.Output.self, Lease.LeaseRevoke.descriptor)
        table["lease/timetolive"] = unary(
            Lease.LeaseTimeToLive.Input.self, Lease.LeaseTimeToLive.Output.self, Lease.LeaseTimeToLive.descriptor)
        table["lease/leases"] = unary(Lease.LeaseLeases.Input.self, Lease.LeaseLeases.Output.self, Lease.LeaseLeases.descriptor)
        for path in ["lease/revoke", "lease/timetolive", "lease/leases"] { table["kv/" + path] = table[path] }
        return table
    }()

    static let decoding: JSONDecodingOptions = {
        var options = JSONDecodingOptions()
        options.ignoreUnknownFields = true
        return options
    }()

    static let encoding: JSONEncodingOptions = {
        var options = JSONEncodingOptions()
        options.preserveProtoFieldNames = true
        return options
    }()

    /// A request body's JSON decoded as `Request`; an empty body is an empty request, as in
    /// grpc-gateway.
    static func decode<Request: Message>(_ json: [UInt8]?, as type: Request.Type) throws -> Request {
        guard let json else { return Request() }
        do {
            return try Request(jsonUTF8Bytes: json, options: decoding)
        } catch {
            throw RPCError(code: .invalidArgument, message: "json: cannot decode \(Request.protoMessageName): \(error)")
        }
    }

    static func unary<Request: Message, Response: Message>(
        _ request: Request.Type, _ response: Response.Type, _ descriptor: MethodDescriptor
    ) -> Route {
        Route(streamsResponses: false) { client, requests, emit in
            var values = requests.makeAsyncIterator()
            let message = try decode(try await values.next(), as: Request.self)
            let answer = try await client.unary(
                request: ClientRequest(message: message, metadata: metadata), descriptor: descriptor,
                serializer: ProtobufSerializer<Request>(), deserializer: ProtobufDeserializer<Response>(),
                options: .defaults
            ) { try $0.message }
            await emit(try answer.jsonUTF8Bytes(options: encoding))
        }
    }

    /// A streaming method: every JSON value of the body is one request message, and the call stays
    /// open after the body ends (etcd's watch keeps watching once the client has sent everything).
    static func streaming<Request: Message, Response: Message>(
        _ request: Request.Type, _ response: Response.Type, _ descriptor: MethodDescriptor
    ) -> Route {
        Route(streamsResponses: true) { client, requests, emit in
            let outgoing = StreamingClientRequest<Request>(metadata: metadata) { writer in
                for try await json in requests {
                    try await writer.write(try decode(json, as: Request.self))
                }
            }
            try await client.bidirectionalStreaming(
                request: outgoing, descriptor: descriptor,
                serializer: ProtobufSerializer<Request>(), deserializer: ProtobufDeserializer<Response>(),
                options: .defaults
            ) { response in
                for try await message in response.messages {
                    await emit(Array("{\"result\":".utf8) + (try message.jsonUTF8Bytes(options: encoding)) + Array("}\n".utf8))
                }
            }
        }
    }

    /// grpc-gateway's HTTP status for a gRPC code (its `HTTPStatusFromCode`).
    static func httpStatus(_ code: RPCError.Code) -> Int {
        switch code {
        case .cancelled: 408
        case .invalidArgument, .outOfRange: 400
        case .deadlineExceeded: 504
        case .notFound: 404
        case .alreadyExists, .aborted: 409
        case .permissionDenied: 403
        case .unauthenticated: 401
        case .resourceExhausted: 429
        case .failedPrecondition: 412
        case .unimplemented: 501
        case .unavailable: 503
        default: 500
        }
    }

    /// grpc-gateway's body for a failed unary call: `{"error":..., "message":..., "code":N}`.
    static func errorBody(_ error: RPCError) -> [UInt8] {
        let message = jsonString(error.message)
        return Array("{\"error\":\(message),\"message\":\(message),\"code\":\(error.code.rawValue)}".utf8)
    }

    /// grpc-gateway's line for a stream that failed after it started.
    static func streamErrorLine(_ error: RPCError) -> [UInt8] {
        let status = httpStatus(error.code)
        return Array(
            ("{\"error\":{\"grpc_code\":\(error.code.rawValue),\"http_code\":\(status),"
                + "\"message\":\(jsonString(error.message)),\"http_status\":\(jsonString(reasonPhrase(status)))}}\n").utf8)
    }

    static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 412: "Precondition Failed"
        case 429: "Too Many Requests"
        case 501: "Not Implemented"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        default: "Internal Server Error"
        }
    }

    static func jsonString(_ text: String) -> String {
        var value = Google_Protobuf_Value()
        value.stringValue = text
        return (try? value.jsonString()) ?? "\"\""
    }
}

/// A counting semaphore for the gateway's calls (see `JSONGateway.streams`).
package actor StreamPermits {
    private var available: Int
    private var waiters: [CheckedContinuation<Void, Never>] = []

    package init(_ count: Int) {
        available = count
    }

    func acquire() async {
        if available > 0 {
            available -= 1
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func release() {
        if waiters.isEmpty {
            available += 1
        } else {
            waiters.removeFirst().resume()
        }
    }
}

/// Cuts a byte stream into whole JSON values (objects, arrays, strings, literals), as Go's
/// `json.Decoder` reads one value after another from a request body: grpc-gateway reads a
/// streaming method's messages that way, and a unary method's single message (ignoring what
/// follows it).
struct JSONValueSplitter {
    private var buffer: [UInt8] = []
    /// Where the value being scanned starts, and the scan's state inside it.
    private var start: Int?
    private var position = 0
    private var depth = 0
    private var inString = false
    private var escaped = false

    /// The values completed by `bytes`.
    mutating func feed(_ bytes: some Collection<UInt8>) -> [[UInt8]] {
        buffer.append(contentsOf: bytes)
        var values: [[UInt8]] = []
        while position < buffer.count {
            let byte = buffer[position]
            position += 1
            guard let first = start else {
                if !Self.isSpace(byte) {
                    start = position - 1
                    if byte == UInt8(ascii: "{") || byte == UInt8(ascii: "[") { depth = 1 }
                    if byte == UInt8(ascii: "\"") { inString = true }
                }
                continue
            }
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                    if depth == 0 { values.append(take(from: first, to: position)) }
                }
                continue
            }
            if depth == 0 {
                // A literal (number, true, null ...) ends at a space or the next value.
                if Self.isSpace(byte) || byte == UInt8(ascii: "{") || byte == UInt8(ascii: "[") || byte == UInt8(ascii: "\"") {
                    position -= 1
                    values.append(take(from: first, to: position))
                }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
                if depth == 0 { values.append(take(from: first, to: position)) }
            default: break
            }
        }
        return values
    }

    /// What is left once the body has ended: an unfinished value (which will not decode), a
    /// literal, or nil.
    mutating func finish() -> [UInt8]? {
        guard let first = start else { return nil }
        return take(from: first, to: buffer.count)
    }

    private mutating func take(from first: Int, to end: Int) -> [UInt8] {
        let value = Array(buffer[first..<end])
        buffer.removeSubrange(0..<end)
        position = 0
        start = nil
        depth = 0
        inString = false
        escaped = false
        return value
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\t")
    }
}
